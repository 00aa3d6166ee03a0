using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>
/// Token ids for fixed strings agree with an independent plain-Python BPE (tests/fixtures/text/reference_bpe.py), and with
/// HF's own tokenizers where the lead's tests/fixtures/reference/tokenizers.json exists.
/// </summary>
public class TokenizerReferenceTests
{
    static readonly Lazy<JsonDocument> Reference = new(() => TextFixtures.Json(TextFixtures.FixturePath("text/bpe_reference.json")));

    public static IEnumerable<object[]> Names() =>
        Reference.Value.RootElement.GetProperty("tokenizers").EnumerateObject().Select(p => new object[] { p.Name });

    [Theory]
    [MemberData(nameof(Names))]
    public void Ids_match_the_independent_python_bpe(string name)
    {
        var entry = Reference.Value.RootElement.GetProperty("tokenizers").GetProperty(name);
        var tokenizer = TextFixtures.TokenizerJson(entry.GetProperty("file").GetString()!);
        var failures = new List<string>();
        foreach (var c in entry.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var expected = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var actual = tokenizer.Encode(text, addSpecialTokens: false).ToArray();
            if (!expected.SequenceEqual(actual))
                failures.Add($"{JsonSerializer.Serialize(text)}\n  expected [{string.Join(",", expected)}]\n  actual   [{string.Join(",", actual)}]");
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} strings differ\n" + string.Join("\n", failures));
    }

    public static IEnumerable<object[]> PreTokenizerNames() =>
        Reference.Value.RootElement.GetProperty("pretokenizers").EnumerateObject().Select(p => new object[] { p.Name });

    [Theory]
    [MemberData(nameof(PreTokenizerNames))]
    public void Llama3_and_qwen2_split_regexes_cut_like_python_regex(string name)
    {
        var entry = Reference.Value.RootElement.GetProperty("pretokenizers").GetProperty(name);
        var pre = HfPreTokenizer.Parse(entry.GetProperty("spec"), name)!;
        Assert.True(pre.IsByteLevel);
        foreach (var c in entry.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var expected = c.GetProperty("pieces").EnumerateArray().Select(x => x.GetString()!).ToArray();
            Assert.Equal(expected, pre.Run(text, atStart: true));
        }
    }
}
