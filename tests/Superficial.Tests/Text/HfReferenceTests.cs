using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>
/// Against Hugging Face itself: tests/fixtures/reference/tokenizers.json holds ids and decodings of fixed strings computed
/// with `tokenizers`, `sentencepiece` and transformers' AutoTokenizer (make_reference.py, run elsewhere).
/// </summary>
public class HfReferenceTests
{
    static readonly Lazy<JsonDocument> Reference = new(() => TextFixtures.Json(TextFixtures.FixturePath("reference/tokenizers.json")));
    static string[] Texts => Reference.Value.RootElement.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();

    static int[][] Lists(JsonElement e, string name) =>
        e.GetProperty(name).EnumerateArray().Select(l => l.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();

    public static IEnumerable<object[]> Entries() =>
        Reference.Value.RootElement.GetProperty("tokenizers").EnumerateObject().Select(p => new object[] { p.Name });

    [Theory]
    [MemberData(nameof(Entries))]
    public void Ids_and_decodings_match_hugging_face(string name)
    {
        var entry = Reference.Value.RootElement.GetProperty("tokenizers").GetProperty(name);
        var file = entry.GetProperty("file").GetString()!;
        var source = entry.GetProperty("source").GetString()!;
        TextTokenizer tok = source.StartsWith("transformers AutoTokenizer 5.") ? TextFixtures.TokenizerV5(file)
            : source.StartsWith("transformers") ? TextFixtures.Tokenizer(file)
            : file.EndsWith("tokenizer.model") ? TextFixtures.Tokenizer("llama2-model")
            : TextFixtures.TokenizerJson(file);
        bool rawSentencePiece = source.StartsWith("sentencepiece");
        var failures = new List<string>();
        var texts = Texts;
        var noSpecial = Lists(entry, "ids_no_special");
        var withSpecial = entry.TryGetProperty("ids_special", out _) ? Lists(entry, "ids_special") : null;
        for (int i = 0; i < texts.Length; i++)
        {
            // Raw sentencepiece knows no added tokens: "<s>" in text is plain text there, one id here (as in HF's tokenizers).
            if (rawSentencePiece && texts[i].Contains("<s>")) continue;
            Check($"{JsonSerializer.Serialize(texts[i])} (no special)", noSpecial[i], tok.Encode(texts[i], addSpecialTokens: false).ToArray());
            if (withSpecial != null) Check($"{JsonSerializer.Serialize(texts[i])} (special)", withSpecial[i], tok.Encode(texts[i]).ToArray());
            if (entry.TryGetProperty("decoded", out var decoded))
            {
                var expected = decoded[i].GetString();
                // `tokenizers` decodes keeping special tokens and never cleans up; sentencepiece decodes its pieces.
                var actual = tok.Decode(noSpecial[i], skipSpecialTokens: rawSentencePiece, cleanUp: false);
                if (expected != actual) failures.Add($"{JsonSerializer.Serialize(texts[i])} decode: expected {JsonSerializer.Serialize(expected)} got {JsonSerializer.Serialize(actual)}");
            }
        }
        foreach (var (field, value) in new[] { ("bos", tok.BosId), ("eos", tok.EosId), ("pad", tok.PadId) })
            if (entry.TryGetProperty(field, out var v))
            {
                int? expected = v.ValueKind == JsonValueKind.Null ? null : v.GetInt32();
                if (expected != value) failures.Add($"{field}: expected {expected?.ToString() ?? "none"} got {value?.ToString() ?? "none"}");
            }
        Assert.True(failures.Count == 0, $"{name} ({source}): {failures.Count} differences\n" + string.Join("\n", failures));

        void Check(string what, int[] expected, int[] actual)
        {
            if (!expected.SequenceEqual(actual))
                failures.Add($"{what}\n  HF   [{string.Join(",", expected)}]\n  ours [{string.Join(",", actual)}]");
        }
    }
}
