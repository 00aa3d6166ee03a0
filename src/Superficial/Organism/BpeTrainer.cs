using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Superficial.IO;
using Superficial.Text;

namespace Superficial.Organism;

/// <summary>
/// A small, deterministic byte-level BPE trainer. Text is pre-tokenised as the written tokenizer.json says
/// (each digit alone, then GPT-2's regex), pieces become byte-level strings, and the most frequent adjacent
/// pair is merged until the vocabulary is full (ties broken by the pair's text, so the result depends only
/// on the corpus). Digits stay single tokens, which keeps arithmetic learnable for a tiny model.
/// </summary>
public sealed class BpeTrainer
{
    public static readonly string[] Specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    public const string ChatTemplateJinja =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    static readonly Regex Digit = new(@"\p{Nd}", RegexOptions.Compiled);
    static readonly Regex Gpt2 = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.Compiled);

    public IReadOnlyList<(string A, string B)> Merges { get; }
    public IReadOnlyDictionary<string, int> Vocab { get; }
    public int VocabSize => Vocab.Count + Specials.Length;
    public int SpecialId(string token) => Vocab.Count + Array.IndexOf(Specials, token);

    BpeTrainer(List<(string, string)> merges, Dictionary<string, int> vocab) { Merges = merges; Vocab = vocab; }

    /// <summary>Pieces as the tokenizer.json pre-tokenizer makes them: digits isolated, then the GPT-2 regex.</summary>
    public static IEnumerable<string> PreTokenize(string text)
    {
        foreach (var part in SplitIsolated(Digit, text))
            foreach (var piece in SplitIsolated(Gpt2, part))
                yield return piece;
    }

    static IEnumerable<string> SplitIsolated(Regex regex, string text)
    {
        int at = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > at) yield return text[at..m.Index];
            yield return m.Value;
            at = m.Index + m.Length;
        }
        if (at < text.Length) yield return text[at..];
    }

    public static BpeTrainer Train(IEnumerable<string> texts, int vocabSize)
    {
        int target = vocabSize - Specials.Length;
        if (target < 256) throw new ArgumentException($"vocabulary size {vocabSize} is below the 256 byte symbols plus specials.");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in texts)
            foreach (var piece in SplitOnSpecials(text).SelectMany(PreTokenize))
            {
                var b = ByteLevel.Encode(piece);
                counts[b] = counts.GetValueOrDefault(b) + 1;
            }
        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Symbols: kv.Key.Select(c => c.ToString()).ToList(), Count: kv.Value)).ToList();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++) vocab[ByteLevel.ByteToChar[b].ToString()] = b;
        var merges = new List<(string, string)>();
        while (vocab.Count < target)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    var p = (symbols[i], symbols[i + 1]);
                    pairs[p] = pairs.GetValueOrDefault(p) + count;
                }
            if (pairs.Count == 0) break;
            var best = default(KeyValuePair<(string, string), int>);
            string bestText = "";
            foreach (var kv in pairs)
            {
                var text = kv.Key.Item1 + " " + kv.Key.Item2;
                if (kv.Value > best.Value || kv.Value == best.Value && string.CompareOrdinal(text, bestText) < 0) { best = kv; bestText = text; }
            }
            if (best.Value < 2) break;
            var (a, b2) = best.Key;
            var merged = a + b2;
            merges.Add((a, b2));
            if (!vocab.ContainsKey(merged)) vocab[merged] = vocab.Count;
            foreach (var (symbols, _) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == a && symbols[i + 1] == b2) { symbols[i] = merged; symbols.RemoveAt(i + 1); }
        }
        return new BpeTrainer(merges, vocab);
    }

    static IEnumerable<string> SplitOnSpecials(string text)
    {
        int at = 0;
        while (at < text.Length)
        {
            int next = -1, len = 0;
            foreach (var s in Specials)
            {
                int k = text.IndexOf(s, at, StringComparison.Ordinal);
                if (k >= 0 && (next < 0 || k < next)) { next = k; len = s.Length; }
            }
            if (next < 0) { yield return text[at..]; yield break; }
            if (next > at) yield return text[at..next];
            at = next + len;
        }
    }

    /// <summary>The trainer's own encoding (merges by rank per piece), for checking the written tokenizer.json against it.</summary>
    public List<int> Encode(string text)
    {
        var ranks = new Dictionary<(string, string), int>();
        for (int i = 0; i < Merges.Count; i++) ranks.TryAdd(Merges[i], i);
        var bpe = new MergeBpe(ranks);
        var ids = new List<int>();
        int at = 0;
        while (at < text.Length)
        {
            int next = -1; string? special = null;
            foreach (var s in Specials)
            {
                int k = text.IndexOf(s, at, StringComparison.Ordinal);
                if (k >= 0 && (next < 0 || k < next)) { next = k; special = s; }
            }
            var segment = next < 0 ? text[at..] : text[at..next];
            foreach (var piece in PreTokenize(segment))
                foreach (var sym in bpe.Apply(ByteLevel.Encode(piece).Select(c => c.ToString()).ToList()))
                    ids.Add(Vocab[sym]);
            if (special is null) break;
            ids.Add(SpecialId(special));
            at = next + special.Length;
        }
        return ids;
    }

    /// <summary>Writes tokenizer.json, tokenizer_config.json (ChatML chat template) and special_tokens_map.json.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var vocab = new JsonObject();
        foreach (var (t, id) in Vocab.OrderBy(kv => kv.Value)) vocab[t] = id;
        var added = new JsonArray(Specials.Select(s => (JsonNode)new JsonObject
        {
            ["id"] = SpecialId(s), ["content"] = s, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = true,
        }).ToArray());
        var json = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added, ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Digits", ["individual_digits"] = true },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }),
            },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false, ["vocab"] = vocab,
                ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)new JsonArray(m.A, m.B)).ToArray()),
            },
        };
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString(options));
        var decoder = new JsonObject();
        foreach (var s in Specials)
            decoder[SpecialId(s).ToString()] = new JsonObject
            {
                ["content"] = s, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
            };
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast", ["add_bos_token"] = false, ["add_eos_token"] = false,
            ["bos_token"] = null, ["eos_token"] = "<|im_end|>", ["pad_token"] = "<|endoftext|>", ["unk_token"] = null,
            ["added_tokens_decoder"] = decoder, ["chat_template"] = ChatTemplateJinja, ["model_max_length"] = 512,
            ["clean_up_tokenization_spaces"] = false,
        }.ToJsonString(options));
        AtomicFile.WriteAllText(Path.Combine(folder, "special_tokens_map.json"), new JsonObject
        {
            ["eos_token"] = "<|im_end|>", ["pad_token"] = "<|endoftext|>",
        }.ToJsonString(options));
    }
}
