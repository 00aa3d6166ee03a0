using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>Locates this area's committed fixtures (tests/fixtures/text) and the shared tokenizer artifacts.</summary>
internal static class TextFixtures
{
    public static string FixturePath(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "fixtures", relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"tests/fixtures/{relative} was not found above {AppContext.BaseDirectory}.");
    }

    public static string Artifact(string relative) => Path.Combine(TestPaths.Artifacts, relative);

    static readonly Dictionary<string, TextTokenizer> Cache = new();

    /// <summary>An artifact folder's tokenizer, loaded once per test run (loading a 2 MB tokenizer.json takes ~0.3 s).</summary>
    public static TextTokenizer Tokenizer(string folder)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(folder, out var t))
                Cache[folder] = t = folder == "llama2-model" ? LoadSentencePieceOnly(Artifact("llama2")) : TextTokenizer.Load(Artifact(folder));
            return t;
        }
    }

    /// <summary>An artifact folder's tokenizer loaded the way transformers 5's AutoTokenizer builds it.</summary>
    public static TextTokenizer TokenizerV5(string folder)
    {
        lock (Cache)
        {
            var key = "v5:" + folder;
            if (!Cache.TryGetValue(key, out var t)) Cache[key] = t = TextTokenizer.Load(Artifact(folder), TokenizerCompatibility.TransformersV5);
            return t;
        }
    }

    /// <summary>llama2's tokenizer.model with its configs, without the tokenizer.json beside it (copied to a temp folder).</summary>
    static TextTokenizer LoadSentencePieceOnly(string folder)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"superficial-spm-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var f in new[] { "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
                File.Copy(Path.Combine(folder, f), Path.Combine(dir, f));
            return TextTokenizer.Load(dir);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>A tokenizer from an artifact folder laid out differently (e.g. gpt2's tokenizer.neox-tests.json), loaded once.</summary>
    public static TextTokenizer TokenizerJson(string jsonRelative)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(jsonRelative, out var t))
            {
                var json = Artifact(jsonRelative);
                Cache[jsonRelative] = t = TextTokenizer.Load(Path.GetDirectoryName(json)!, json);
            }
            return t;
        }
    }

    public static JsonDocument Json(string path) => JsonDocument.Parse(File.ReadAllBytes(path));
}
