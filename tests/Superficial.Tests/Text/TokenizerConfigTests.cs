using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>Model-folder parsing on small synthetic folders: config fallbacks, AddedToken objects, clear errors.</summary>
public class TokenizerConfigTests
{
    /// <summary>A byte-level BPE tokenizer.json: the 256 byte characters, "hello" built by four merges, two added tokens.</summary>
    static void WriteTinyTokenizer(string dir, bool pairMerges = false, bool ignoreMerges = false)
    {
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[((char)ByteChar(b)).ToString()] = b;
        vocab["he"] = 256; vocab["ll"] = 257; vocab["hell"] = 258; vocab["hello"] = 259; vocab["xyz"] = 262;
        object[] merges = pairMerges
            ? [new[] { "h", "e" }, new[] { "l", "l" }, new[] { "he", "ll" }, new[] { "hell", "o" }]
            : ["h e", "l l", "he ll", "hell o"];
        var json = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new object[]
            {
                new { id = 260, content = "<|eos|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
                new { id = 261, content = "<|im_end|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
            },
            ["normalizer"] = null,
            ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            ["post_processor"] = null,
            ["decoder"] = new { type = "ByteLevel" },
            ["model"] = new { type = "BPE", dropout = (double?)null, unk_token = (string?)null, ignore_merges = ignoreMerges, vocab, merges },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(json));
    }

    // GPT-2's byte → character map, written out independently of the library.
    static int ByteChar(int b)
    {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable) return b;
        int n = 0;
        for (int x = 0; x < b; x++) if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
        return 256 + n;
    }

    [Fact]
    public void Tiny_tokenizer_merges_from_strings_and_from_pairs_agree()
    {
        using var a = TestPaths.NewTempDir("tok");
        using var b = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(a.Path);
        WriteTinyTokenizer(b.Path, pairMerges: true);
        var ta = TextTokenizer.Load(a.Path);
        var tb = TextTokenizer.Load(b.Path);
        Assert.Equal([259], ta.Encode("hello"));
        Assert.Equal(ta.Encode("hello hello<|eos|>"), tb.Encode("hello hello<|eos|>"));
        // " hell" is the word "Ġhell" (Ġ has the id of byte 32): no merge joins Ġ, and h+e, l+l, he+ll give "hell".
        Assert.Equal([259, (int)' ', 258, 260], ta.Encode("hello hell<|eos|>"));
        Assert.Equal(263, ta.VocabSize);
    }

    [Fact]
    public void Ignore_merges_takes_whole_words_from_the_vocabulary()
    {
        // Llama 3 sets ignore_merges: a word that is itself a token is not built by merges ("xyz" has none).
        using var a = TestPaths.NewTempDir("tok");
        using var b = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(a.Path);
        WriteTinyTokenizer(b.Path, ignoreMerges: true);
        Assert.Equal(['x', 'y', 'z'], TextTokenizer.Load(a.Path).Encode("xyz").Select(i => (char)i));
        Assert.Equal([262], TextTokenizer.Load(b.Path).Encode("xyz"));
    }

    [Fact]
    public void Special_tokens_fall_back_from_config_to_map_to_generation_config()
    {
        using var d = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(d.Path);
        // eos as an AddedToken object, bos missing here, pad only in special_tokens_map.json.
        File.WriteAllText(d.File("tokenizer_config.json"), """
            {"add_bos_token": true, "eos_token": {"__type": "AddedToken", "content": "<|eos|>", "lstrip": false, "normalized": false},
             "bos_token": null, "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ '<|im_start|>' }}"}]}
            """);
        File.WriteAllText(d.File("special_tokens_map.json"), """{"pad_token": "hello"}""");
        File.WriteAllText(d.File("generation_config.json"), """{"bos_token_id": 256, "eos_token_id": [260, 261]}""");
        var t = TextTokenizer.Load(d.Path);
        Assert.Equal(260, t.EosId);
        Assert.Equal(256, t.BosId);           // from generation_config.json
        Assert.Equal(259, t.PadId);           // from special_tokens_map.json
        Assert.True(t.AddBos);
        Assert.Equal([256, 259], t.Encode("hello"));
        Assert.Equal([260, 261], t.StopIds);
        Assert.Equal("{{ '<|im_start|>' }}", t.ChatTemplateSource);
        Assert.True(t.IsSpecial(259)); // a config special token becomes a special added token, as in transformers
    }

    [Fact]
    public void Chat_template_jinja_file_wins_and_end_of_turn_tokens_become_stop_ids()
    {
        using var d = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(d.Path);
        File.WriteAllText(d.File("tokenizer_config.json"), """{"eos_token": "<|eos|>", "chat_template": "[INST] <<SYS>>"}""");
        File.WriteAllText(d.File("chat_template.jinja"),
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
        var t = TextTokenizer.Load(d.Path);
        Assert.StartsWith("{% for message", t.ChatTemplateSource);
        Assert.EndsWith("chat_template.jinja", t.ChatTemplateOrigin);
        Assert.Equal([260, 261], t.StopIds);
        var template = t.GetChatTemplate();
        Assert.Equal("chatml", template.Family);
        Assert.Equal("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", template.Render([new ChatMessage("user", "hello")]));
        Assert.EndsWith("chat template chatml", t.Describe());
    }

    [Fact]
    public void Added_tokens_decoder_entries_extend_the_vocabulary()
    {
        using var d = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(d.Path);
        File.WriteAllText(d.File("tokenizer_config.json"), """
            {"added_tokens_decoder": {"263": {"content": "<|new|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": false},
                                      "260": {"content": "<|eos|>", "special": true}}}
            """);
        var t = TextTokenizer.Load(d.Path);
        Assert.Equal(264, t.VocabSize);
        Assert.Equal([259, 263, 259], t.Encode("hello<|new|>hello"));
        Assert.False(t.IsSpecial(263));
        Assert.Equal("hello<|new|>hello", t.Decode([259, 263, 259]));
    }

    [Fact]
    public void Malformed_config_is_reported_with_its_file()
    {
        using var d = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(d.Path);
        File.WriteAllText(d.File("tokenizer_config.json"), """{"eos_token": "<|eos|>", """);
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void A_special_token_missing_from_the_vocabulary_names_file_and_field()
    {
        using var d = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(d.Path);
        File.WriteAllText(d.File("special_tokens_map.json"), """{"bos_token": {"content": "<|nope|>"}}""");
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("special_tokens_map.json: bos_token", e.Message);
        Assert.Contains("<|nope|>", e.Message);
    }

    [Fact]
    public void Wrong_field_types_and_out_of_range_ids_are_reported()
    {
        using var d = TestPaths.NewTempDir("tok");
        WriteTinyTokenizer(d.Path);
        File.WriteAllText(d.File("tokenizer_config.json"), """{"add_bos_token": "yes"}""");
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("add_bos_token", e.Message);
        File.WriteAllText(d.File("tokenizer_config.json"), "{}");
        File.WriteAllText(d.File("generation_config.json"), """{"eos_token_id": [260, 99999]}""");
        e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("eos_token_id 99999", e.Message);
    }

    [Fact]
    public void Unsupported_or_missing_tokenizers_are_refused_clearly()
    {
        using var d = TestPaths.NewTempDir("tok");
        var missing = Assert.Throws<FileNotFoundException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("no tokenizer.json, tokenizer.model", missing.Message);
        File.WriteAllText(d.File("tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""");
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("model type 'WordPiece'", e.Message);
        Assert.Throws<DirectoryNotFoundException>(() => TextTokenizer.Load(d.File("absent")));
    }
}
