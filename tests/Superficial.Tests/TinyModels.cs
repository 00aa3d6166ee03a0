using System.Text;
using System.Text.Json.Nodes;
using Superficial.Models;

namespace Superficial.Tests;

/// <summary>
/// Tiny model folders in Hugging Face format, written by the tests so the real loaders are exercised:
/// a byte-level BPE tokenizer (the 256 GPT-2 byte symbols, a few merges, ChatML special tokens and
/// template) and random Llama-family models over it.
/// </summary>
public static class TinyModels
{
    public const int Vocab = 256 + 8 + 3; // bytes, merges, specials

    static readonly string[] Merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s"];

    /// <summary>The GPT-2 byte-to-unicode table (printable stand-ins for the 256 byte values).</summary>
    public static string[] ByteSymbols()
    {
        var bs = new List<int>();
        for (int b = '!'; b <= '~'; b++) bs.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.Add(b);
        var cs = new List<int>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.Contains(b)) { bs.Add(b); cs.Add(256 + n++); }
        var map = new string[256];
        for (int i = 0; i < bs.Count; i++) map[bs[i]] = char.ConvertFromUtf32(cs[i]);
        return map;
    }

    public static void WriteTokenizer(string dir)
    {
        Directory.CreateDirectory(dir);
        var vocab = new JsonObject();
        var sym = ByteSymbols();
        for (int b = 0; b < 256; b++) vocab[sym[b]] = b;
        int id = 256;
        foreach (var m in Merges) vocab[m.Replace(" ", "")] = id++;
        string[] specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
        var added = new JsonArray();
        foreach (var s in specials)
        {
            added.Add(new JsonObject { ["id"] = id, ["content"] = s, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
            id++;
        }
        var tok = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)m).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tok.ToJsonString(), new UTF8Encoding(false));
        var template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        var cfg = new JsonObject
        {
            ["tokenizer_class"] = "GPT2Tokenizer", ["bos_token"] = null, ["eos_token"] = "<|im_end|>", ["pad_token"] = "<|endoftext|>",
            ["unk_token"] = null, ["add_bos_token"] = false, ["chat_template"] = template, ["model_max_length"] = 512,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString());
    }

    public static ModelConfig Config(int hidden = 32, int layers = 2) =>
        ModelConfig.Llama(Vocab, hidden, layers, heads: 4, kvHeads: 2, intermediate: hidden * 2, maxPositions: 256,
            tieWordEmbeddings: false, eosId: 258 + 8, padId: 256 + 8);

    /// <summary>Writes a random model (with the tokenizer) to <paramref name="dir"/>.</summary>
    public static string WriteModel(string dir, int seed, int hidden = 32, int layers = 2)
    {
        using var m = CausalLM.Create(Config(hidden, layers), seed);
        m.SaveHf(dir);
        WriteTokenizer(dir);
        return dir;
    }
}
