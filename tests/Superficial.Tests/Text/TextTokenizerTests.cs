using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>TextTokenizer on the real artifact tokenizers: known ids, special tokens, BOS/EOS, round trips, speed.</summary>
public class TextTokenizerTests
{
    static TextTokenizer Gpt2 => TextFixtures.Tokenizer("gpt2");                        // vocab.json + merges.txt
    static TextTokenizer Gpt2Json => TextFixtures.TokenizerJson("gpt2/tokenizer.neox-tests.json");
    static TextTokenizer Llama2Model => TextFixtures.Tokenizer("llama2-model");
    static TextTokenizer Llama2Json => TextFixtures.Tokenizer("llama2");
    static TextTokenizer Phi2 => TextFixtures.Tokenizer("phi2");
    static TextTokenizer Phi3 => TextFixtures.Tokenizer("phi3-mini");
    static TextTokenizer Falcon => TextFixtures.Tokenizer("falcon");

    public static TheoryData<string> AllTokenizers => new() { "gpt2", "gpt2-json", "llama2-model", "llama2", "phi2", "phi3-mini", "falcon" };

    static TextTokenizer ByName(string name) => name switch
    {
        "gpt2-json" => Gpt2Json,
        _ => TextFixtures.Tokenizer(name),
    };

    static int VocabId(string file, string token)
    {
        using var doc = TextFixtures.Json(TextFixtures.Artifact(file));
        var root = file.EndsWith("vocab.json") ? doc.RootElement : doc.RootElement.GetProperty("model").GetProperty("vocab");
        return root.GetProperty(token).GetInt32();
    }

    [Fact]
    public void Gpt2_hello_world_is_15496_995_from_both_file_layouts()
    {
        Assert.Equal([15496, 995], Gpt2.Encode("Hello world"));
        Assert.Equal([15496, 995], Gpt2Json.Encode("Hello world"));
        // The ids are what vocab.json says for the two byte-level words.
        Assert.Equal(15496, VocabId("gpt2/vocab.json", "Hello"));
        Assert.Equal(995, VocabId("gpt2/vocab.json", "Ġworld"));
        Assert.Equal(50257, Gpt2.VocabSize);
        Assert.False(Gpt2.AddBos);
        Assert.Equal("Ġworld", Gpt2.IdToToken(995));
        Assert.Equal(995, Gpt2.TokenToId("Ġworld"));
    }

    [Fact]
    public void Llama2_sentencepiece_hello_world_with_bos_is_1_15043_3186()
    {
        Assert.Equal([1, 15043, 3186], Llama2Model.Encode("Hello world"));
        Assert.Equal([1, 15043, 3186], Llama2Json.Encode("Hello world"));
        Assert.Equal([15043, 3186], Llama2Model.Encode("Hello world", addSpecialTokens: false));
        Assert.Equal("▁Hello", Llama2Model.IdToToken(15043));
        Assert.Equal(32000, Llama2Model.VocabSize);
        Assert.Equal(32000, Llama2Json.VocabSize);
    }

    [Fact]
    public void Llama2_config_special_tokens_from_AddedToken_objects()
    {
        foreach (var t in new[] { Llama2Model, Llama2Json })
        {
            Assert.Equal(1, t.BosId);
            Assert.Equal(2, t.EosId);
            Assert.Equal(0, t.UnkId);
            Assert.Null(t.PadId);
            Assert.True(t.AddBos);
            Assert.False(t.AddEos);
            Assert.Equal([2], t.StopIds);
            Assert.True(t.IsSpecial(1) && t.IsSpecial(2) && !t.IsSpecial(15043));
            Assert.Null(t.ChatTemplateSource);
        }
    }

    [Fact]
    public void Llama2_tokenizer_json_and_tokenizer_model_agree_on_ordinary_text()
    {
        // The artifacts README: the tokenizer.json copy has plain spaces where tokenizer.model has NBSP (ids 8655,
        // 17891, 20246, 30081), so text with NBSP is left out.
        string[] texts =
        [
            "Hello world", "The quick brown fox jumps over the lazy dog.", "  two leading spaces and   three inside",
            "Line one\nLine two\n\n\tTabbed", "Numbers 1234567890, 3.14159 and -42.", "café naïve résumé Straße",
            "日本語のテキスト", "Привет, мир!", "Emoji 😀👍🏽🚀🇫🇷 and math 𝕜", "don't won't I'm they'll",
            "def f(x):\n    return x ** 2  # comment\n", "a" + new string(' ', 20) + "b", "!!!???...,,,;;;",
            "Mixed: 日本 and English and ελληνικά", "Tab\tseparated\tvalues\t1\t2",
        ];
        foreach (var text in texts)
            Assert.True(Llama2Model.Encode(text).SequenceEqual(Llama2Json.Encode(text)),
                $"{JsonSerializer.Serialize(text)}: model [{string.Join(",", Llama2Model.Encode(text))}] json [{string.Join(",", Llama2Json.Encode(text))}]");
    }

    [Fact]
    public void Phi3_shares_llama2_ids_and_adds_chat_tokens()
    {
        var text = "The quick brown fox, 1234 times: 日本 😀";
        Assert.Equal(Llama2Model.Encode(text, false), Phi3.Encode(text, false));
        // <|user|> etc. are rstrip tokens: the newline after them is absorbed, and the text after gets the "▁" prefix.
        Assert.Equal([32010, 15043, 32007, 32001], Phi3.Encode("<|user|>\nHello<|end|>\n<|assistant|>\n", false));
        Assert.False(Phi3.AddBos); // tokenizer_config.json: add_bos_token false
        Assert.Equal(1, Phi3.BosId);
        Assert.Equal(32000, Phi3.EosId);
        Assert.Equal(32000, Phi3.PadId);
        Assert.Contains(32000, Phi3.StopIds);
        Assert.Contains(32007, Phi3.StopIds); // <|end|>, the template's end of turn
        Assert.Equal(32011, Phi3.VocabSize);
    }

    [Fact]
    public void Special_token_strings_in_text_become_single_ids()
    {
        var hello = Gpt2.Encode("Hello", false);
        var world = Gpt2.Encode("world", false);
        Assert.Equal([.. hello, 50256, .. world], Gpt2Json.Encode("Hello<|endoftext|>world"));
        Assert.Equal(50256, Gpt2Json.TokenToId("<|endoftext|>"));
        // Falcon's specials are added tokens 0..11.
        Assert.Equal([11], Falcon.Encode("<|endoftext|>", false));
        Assert.Equal([5], Falcon.Encode(">>ANSWER<<", false));
        // Llama-2: "<s>" is an added token; "[INST]" is not, so it is ordinary text.
        var ids = Llama2Model.Encode("<s>[INST] Hi [/INST]", false);
        Assert.Equal(1, ids[0]);
        Assert.Single(ids, 1);
        Assert.Equal("[INST] Hi [/INST]", Llama2Model.Decode(ids));
    }

    [Fact]
    public void Phi2_whitespace_runs_are_added_tokens()
    {
        using var doc = TextFixtures.Json(TextFixtures.Artifact("phi2/tokenizer.json"));
        var eight = doc.RootElement.GetProperty("added_tokens").EnumerateArray().Single(t => t.GetProperty("content").GetString() == new string(' ', 8)).GetProperty("id").GetInt32();
        var ids = Phi2.Encode("x\n" + new string(' ', 8) + "return", false);
        Assert.Contains(eight, ids);
        Assert.Equal("x\n" + new string(' ', 8) + "return", Phi2.Decode(ids));
        Assert.False(Phi2.IsSpecial(eight));
        Assert.True(Phi2.IsSpecial(50256));
    }

    [Fact]
    public void Falcon_splits_digits_in_groups_of_three()
    {
        var ids = Falcon.Encode("1234567", false);
        Assert.Equal([.. Falcon.Encode("123", false), .. Falcon.Encode("456", false), .. Falcon.Encode("7", false)], ids);
        Assert.Equal("1234567", Falcon.Decode(ids));
        Assert.Null(Falcon.BosId);
        Assert.False(Falcon.AddBos);
    }

    static readonly string[] RoundTripTexts =
    [
        "Hello world", "The quick brown fox jumps over the lazy dog", "café naïve résumé Straße 日本語 Привет Ελληνικά",
        "Emoji 😀👍🏽🚀🇫🇷 and astral 𝕜𝓝 letters", "    four leading spaces", "trailing spaces    ", "a  b   c    d     e",
        "tabs\tand\nnewlines\n\n\n\r\n", "digits 0123456789 9876543210 3.14159 1e-10", "",
        "x = [1, 2, 3]; y = {\"k\": 'v'} // <tag attr=\"1\">",
    ];

    [Theory]
    [MemberData(nameof(AllTokenizers))]
    public void Decode_inverts_encode(string name)
    {
        var t = ByName(name);
        foreach (var text in RoundTripTexts)
        {
            var ids = t.Encode(text);
            var back = t.Decode(ids);
            Assert.True(text == back, $"{name}: {JsonSerializer.Serialize(text)} → [{string.Join(",", ids)}] → {JsonSerializer.Serialize(back)}");
        }
    }

    [Fact]
    public void Decode_keeps_special_tokens_when_asked()
    {
        var ids = Llama2Model.Encode("Hi");
        Assert.Equal("Hi", Llama2Model.Decode(ids));
        Assert.Equal("<s> Hi", Llama2Model.Decode(ids, skipSpecialTokens: false));
        Assert.Equal("Hello<|endoftext|>", Gpt2Json.Decode([15496, 50256], skipSpecialTokens: false));
        Assert.Equal("Hello", Gpt2Json.Decode([15496, 50256]));
        Assert.Equal("Hello", Gpt2Json.Decode([15496, 999_999])); // ids beyond the vocabulary are ignored, as HF does
    }

    [Fact]
    public void Byte_fallback_covers_characters_missing_from_the_vocabulary()
    {
        // U+1F600 is not a Llama-2 piece: it becomes its four UTF-8 bytes <0xF0><0x9F><0x98><0x80>.
        var ids = Llama2Json.Encode("😀", false);
        Assert.Equal(new[] { "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>" }, ids.Select(i => Llama2Json.IdToToken(i)));
        Assert.Equal("😀", Llama2Json.Decode(ids));
        // An incomplete byte sequence decodes to one U+FFFD per byte, as HF's ByteFallback decoder does.
        Assert.Equal("\uFFFD\uFFFD", Llama2Json.Decode([Llama2Json.TokenToId("<0xF0>")!.Value, Llama2Json.TokenToId("<0x9F>")!.Value]));
    }

    [Theory]
    [MemberData(nameof(AllTokenizers))]
    public void Encoding_100KB_takes_well_under_a_second(string name)
    {
        var t = ByName(name);
        var rnd = new Random(7);
        string[] words = ["the", "quick", "brown", "fox", "jumps", "1234", "Hello,", "world!", "\n", "  ", "café", "日本", "😀"];
        var sb = new StringBuilder();
        while (sb.Length < 100_000) sb.Append(words[rnd.Next(words.Length)]).Append(' ');
        var text = sb.ToString();
        t.Encode(text[..1000]); // warm up
        var sw = Stopwatch.StartNew();
        var ids = t.Encode(text);
        sw.Stop();
        Assert.True(sw.ElapsedMilliseconds < 900, $"{name}: {sw.ElapsedMilliseconds} ms for {text.Length} chars ({ids.Count} ids)");
        Assert.Equal(text, t.Decode(ids));
    }

    [Theory]
    [InlineData("gpt2-json")]
    [InlineData("llama2")]
    [InlineData("falcon")]
    public void Long_pieces_merge_the_same_in_both_engines(string name)
    {
        // Pieces longer than BpeModel.LongPiece are merged by MergeBpe (O(n log n)) rather than BpeTokenizer (quadratic).
        var model = Assert.IsType<BpeModel>(ByName(name).Model);
        var rnd = new Random(3);
        string alphabet = name == "llama2" ? "▁▁▁abcdeéfghilmnorst" : "ĠĠabcdeÃ©fghilmnorstĊ";
        for (int n = 0; n < 40; n++)
        {
            var piece = new string(Enumerable.Range(0, rnd.Next(5, 700)).Select(_ => alphabet[rnd.Next(alphabet.Length)]).ToArray());
            var ml = model.MergeShort(piece);
            var pq = model.MergeLong(piece).Select(t => model.TokenToId(t)!.Value).ToArray();
            Assert.Equal(ml, pq);
        }
    }

    [Theory]
    [MemberData(nameof(AllTokenizers))]
    public void A_100KB_single_word_or_whitespace_run_is_not_pathological(string name)
    {
        var t = ByName(name);
        foreach (var text in new[] { new string('a', 100_000), new string(' ', 100_000), string.Concat(Enumerable.Repeat("ab1", 33_000)) })
        {
            var sw = Stopwatch.StartNew();
            var ids = t.Encode(text, false);
            Assert.True(sw.ElapsedMilliseconds < 2000, $"{name}: {sw.ElapsedMilliseconds} ms for {JsonSerializer.Serialize(text[..6])}…");
            Assert.Equal(text, t.Decode(ids));
        }
    }

    [Fact]
    public void Describe_names_kind_vocab_specials_and_template()
    {
        Assert.Equal("byte-level BPE, vocab 50257, bos none, eos none, pad none, adds bos no, stop ids [], chat template none", Gpt2.Describe());
        var phi3 = Phi3.Describe();
        Assert.StartsWith("SentencePiece BPE, vocab 32011, bos <s> (1), eos <|endoftext|> (32000), pad <|endoftext|> (32000), adds bos no", phi3);
        Assert.EndsWith("chat template phi3", phi3);
        Assert.StartsWith("SentencePiece BPE (tokenizer.model), vocab 32000, bos <s> (1), eos </s> (2)", Llama2Model.Describe());
    }

    [Fact]
    public void Phi3_chat_template_renders_and_encodes_like_hf()
    {
        var template = Phi3.GetChatTemplate();
        Assert.Equal("phi3", template.Family);
        var text = template.Render([new ChatMessage("user", "Hello")]);
        Assert.Equal("<|user|>\nHello<|end|>\n<|assistant|>\n", text);
        Assert.Equal([32010, 15043, 32007, 32001], Phi3.Encode(text, addSpecialTokens: false));
        Assert.Equal("llama2", Phi3.GetChatTemplate("llama2").Family);
        Assert.Throws<UnrecognizedChatTemplateException>(() => Llama2Model.GetChatTemplate());
        Assert.Throws<UnrecognizedChatTemplateException>(() => Llama2Model.GetChatTemplate("no-such-format"));
    }
}
