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
