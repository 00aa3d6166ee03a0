using Superficial.Alignment;
using Superficial.Cli;
using Superficial.IO;

namespace Superficial.Tests.Cli;

/// <summary>The words of --init, --transfer-mode and --via-base-reads, parsed into the library's enums with the errors they always gave.</summary>
public class ChoicesTests
{
    [Fact]
    public void WordsParseIntoEnumsAndBack()
    {
        Assert.Equal(HeadInit.Random, Choices.Parse<HeadInit>("--init", "random"));
        Assert.Equal(TransferMode.Direct, Choices.Parse<TransferMode>("--transfer-mode", "direct"));
        Assert.Equal(SideModelReads.Same, Choices.Parse<SideModelReads>("--via-base-reads", "same"));
        // the words files record (head settings, variant identities) are the ones typed
        Assert.Equal(["zero", "random"], Enum.GetValues<HeadInit>().Select(v => v.Name()));
        Assert.Equal(["offset", "direct"], Enum.GetValues<TransferMode>().Select(v => v.Name()));
        Assert.Equal(["raw", "same"], Enum.GetValues<SideModelReads>().Select(v => v.Name()));
    }

    [Theory]
    [InlineData("--init", "Zero", "--init Zero: expected zero or random.")]
    [InlineData("--transfer-mode", "sideways", "--transfer-mode sideways: expected offset or direct.")]
    [InlineData("--via-base-reads", "chat", "--via-base-reads chat: expected raw or same.")]
    public void UnknownWordsAreRefusedNamingTheFlag(string flag, string word, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => flag switch
        {
            "--init" => (object)Choices.Parse<HeadInit>(flag, word),
            "--transfer-mode" => Choices.Parse<TransferMode>(flag, word),
            _ => Choices.Parse<SideModelReads>(flag, word),
        });
        Assert.Equal(message, e.Message);
    }
}

/// <summary>Library messages name parameters as `Name`; the command line shows its flags.</summary>
public class FlagNamesTests
{
    [Fact]
    public void EveryParameterTheLibraryNamesInAMessageHasAFlag()
    {
        Assert.Equal("--transfer-from needs --head: x; `Unknown` stays", FlagNames.Map("`TransferFrom` needs `Head`: x; `Unknown` stays"));
        Assert.Equal("--via-base-reads and --via-base", FlagNames.Map("`ViaBaseReads` and `ViaBase`"));
        // every backquoted name in the library's messages (Generation, Alignment, Serving) is in the table
        var src = Path.Combine(TestPaths.Fixtures, "..", "..", "src", "Superficial");
        var names = new[] { "Generation", "Alignment", "Serving" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(src, d), "*.cs", SearchOption.AllDirectories))
            .SelectMany(f => File.ReadAllLines(f).Where(l => !l.TrimStart().StartsWith("//")))
            .SelectMany(l => System.Text.RegularExpressions.Regex.Matches(l, @"`([A-Za-z]+)`").Select(m => m.Groups[1].Value))
            .Distinct().ToArray();
        Assert.NotEmpty(names);
        Assert.All(names, n => Assert.True(FlagNames.Flags.ContainsKey(n), $"`{n}` appears in a library message but has no flag"));
    }
}
