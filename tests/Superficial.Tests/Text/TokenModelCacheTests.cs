using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>Token models are built once per file content in a process (<see cref="TokenModelCache"/>), never served stale.</summary>
public class TokenModelCacheTests : IDisposable
{
    readonly TempDir tmp = TestPaths.NewTempDir("token-model-cache");

    public void Dispose() => tmp.Dispose();

    string Folder(string name, string artifact, params string[] files)
    {
        var dir = Directory.CreateDirectory(tmp.File(name)).FullName;
        foreach (var f in files) File.Copy(TextFixtures.Artifact(Path.Combine(artifact, f)), Path.Combine(dir, f), overwrite: true);
        return dir;
    }

    [Theory]
    [InlineData("tokenizer.model")]
    [InlineData("tokenizer.json")]
    public void TwoFoldersWithTheSameFileShareOneModel(string file)
    {
        // a base model and its chat model: two folders, the same tokenizer bytes
        var a = TextTokenizer.Load(Folder("base-" + file, "llama2", file, "tokenizer_config.json"));
        var b = TextTokenizer.Load(Folder("chat-" + file, "llama2", file, "tokenizer_config.json"));
        Assert.Same(a.Model, b.Model);
        Assert.NotEqual(a.SourceFile, b.SourceFile);   // each tokenizer still says where it was read from
        const string text = "Hello world, the café is open.";
        Assert.Equal(a.Encode(text), b.Encode(text));
        Assert.Equal(TextFixtures.Tokenizer(file == "tokenizer.model" ? "llama2-model" : "llama2").Encode(text), a.Encode(text));
    }

    [Fact]
    public void AFileChangedInPlaceIsReadAgain()
    {
        var dir = Folder("changing", "phi2", "tokenizer.json", "tokenizer_config.json");
        var before = TextTokenizer.Load(dir);
        const string text = "Hello world, the café is open.";
        Assert.Equal(TextFixtures.Tokenizer("phi2").Encode(text), before.Encode(text));
        // the same path now holds another tokenizer (another vocabulary): its ids, not the first file's
        File.Copy(TextFixtures.Artifact("llama2/tokenizer.json"), Path.Combine(dir, "tokenizer.json"), overwrite: true);
        File.Copy(TextFixtures.Artifact("llama2/tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"), overwrite: true);
        var after = TextTokenizer.Load(dir);
        Assert.NotSame(before.Model, after.Model);
        Assert.Equal(TextFixtures.Tokenizer("llama2").Encode(text), after.Encode(text));
        Assert.NotEqual(before.Encode(text), after.Encode(text));
    }
}
