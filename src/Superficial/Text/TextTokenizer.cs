using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Superficial.Text;

/// <summary>
/// The tokenizer of a Hugging Face model folder. Reads tokenizer.json (byte-level BPE: GPT-2, Llama 3,
/// Qwen2, SmolLM, Falcon; or SentencePiece-style BPE with byte fallback: Llama 2, Phi-3) or
/// tokenizer.model (SentencePiece, through Microsoft.ML.Tokenizers), plus the special tokens of
/// tokenizer_config.json, special_tokens_map.json and generation_config.json. Added tokens written in
/// the text (e.g. "&lt;|im_start|&gt;") encode to their single ids, as in HF.
/// </summary>
public sealed class TextTokenizer
{
    enum Kind { ByteLevelBpe, SentencePieceBpeJson, SentencePieceModel }

    readonly Kind kind;
    readonly string folder;
    readonly Dictionary<string, int> vocab;          // token string -> id (base vocabulary and added tokens)
    string?[] idToToken;
    readonly HashSet<int> specialIds = [];
    readonly List<(string Content, int Id)> added;   // longest first, for splitting text
    readonly Func<string, bool, IReadOnlyList<int>> encodeSegment; // (text, isFirstSegment) -> ids
    readonly Func<IReadOnlyList<int>, string> decodeIds;

    public int VocabSize => idToToken.Length;
    public int? BosId { get; private set; }
    public int? EosId { get; private set; }
    public int? PadId { get; private set; }
    public int? UnkId { get; private set; }
    public IReadOnlyList<int> StopIds { get; private set; } = [];
    public bool AddBos { get; private set; }
    public bool AddEos { get; private set; }
    public string? ChatTemplateSource { get; private set; }
    public string? BosToken => BosId is int b ? idToToken[b] : null;
    public string? EosToken => EosId is int e ? idToToken[e] : null;

    TextTokenizer(Kind kind, string folder, Dictionary<string, int> vocab, List<(string, int)> added,
        Func<string, bool, IReadOnlyList<int>> encodeSegment, Func<IReadOnlyList<int>, string> decodeIds)
    {
        this.kind = kind; this.folder = folder; this.vocab = vocab; this.encodeSegment = encodeSegment; this.decodeIds = decodeIds;
        int size = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        idToToken = new string?[size];
        foreach (var (t, id) in vocab) idToToken[id] = t;
        this.added = added.OrderByDescending(a => a.Item1.Length).ToList();
    }

    public static TextTokenizer Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"tokenizer folder not found: {folder}");
        var config = ReadJson(Path.Combine(folder, "tokenizer_config.json"));
        var specialMap = ReadJson(Path.Combine(folder, "special_tokens_map.json"));
        var genConfig = ReadJson(Path.Combine(folder, "generation_config.json"));
        var jsonPath = Path.Combine(folder, "tokenizer.json");
        var modelPath = Path.Combine(folder, "tokenizer.model");
        TextTokenizer tok;
        if (File.Exists(jsonPath))
        {
            var json = ReadJson(jsonPath)!;
            bool spmStyle = IsSentencePieceStyle(json);
            tok = spmStyle && File.Exists(modelPath) ? FromSentencePieceModel(folder, modelPath, json) : FromTokenizerJson(folder, jsonPath, json);
        }
        else if (File.Exists(modelPath)) tok = FromSentencePieceModel(folder, modelPath, null);
        else throw new FileNotFoundException($"{folder} has neither tokenizer.json nor tokenizer.model.");
        return tok.WithSpecials(config, specialMap, genConfig);
    }

    static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: expected a JSON object.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})."); }
    }

    static bool IsSentencePieceStyle(JsonObject json)
    {
        var text = (json["normalizer"]?.ToJsonString() ?? "") + (json["pre_tokenizer"]?.ToJsonString() ?? "");
        return text.Contains("\\u2581") || text.Contains("▁") || text.Contains("Metaspace");
    }

    // ---------- tokenizer.json ----------

    static TextTokenizer FromTokenizerJson(string folder, string path, JsonObject json)
    {
        var model = json["model"] as JsonObject ?? throw new InvalidDataException($"{path}: missing \"model\".");
        var type = (string?)model["type"];
        if (type != "BPE") throw new InvalidDataException($"{path}: model type \"{type}\" is not supported (expected BPE).");
        var vocabObj = model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: model.vocab must be an object of token -> id.");
        var vocab = new Dictionary<string, int>(vocabObj.Count, StringComparer.Ordinal);
        foreach (var (t, v) in vocabObj) vocab[t] = v!.GetValue<int>();
        var merges = ReadMerges(path, model);
        var added = ReadAdded(path, json, vocab, out var specials);
        bool spm = IsSentencePieceStyle(json);
        TextTokenizer tok = spm ? SentencePieceJson(folder, path, json, model, vocab, merges, added) : ByteLevelJson(folder, path, json, vocab, merges, added);
        foreach (var s in specials) tok.specialIds.Add(s);
        return tok;
    }

    static List<(string, string)> ReadMerges(string path, JsonObject model)
    {
        var list = new List<(string, string)>();
        if (model["merges"] is not JsonArray arr) throw new InvalidDataException($"{path}: model.merges must be a list.");
        foreach (var m in arr)
        {
            if (m is JsonArray pair && pair.Count == 2) list.Add(((string)pair[0]!, (string)pair[1]!));
            else if (m is JsonValue v && v.TryGetValue(out string? s))
            {
                int sp = s.IndexOf(' ', 1);
                if (sp < 0) throw new InvalidDataException($"{path}: merge \"{s}\" is not two space-separated symbols.");
                list.Add((s[..sp], s[(sp + 1)..]));
            }
            else throw new InvalidDataException($"{path}: merge {m?.ToJsonString()} is neither \"a b\" nor [a, b].");
        }
        return list;
    }

    static List<(string, int)> ReadAdded(string path, JsonObject json, Dictionary<string, int> vocab, out List<int> specials)
    {
        var added = new List<(string, int)>();
        specials = [];
        if (json["added_tokens"] is JsonArray arr)
            foreach (var a in arr.OfType<JsonObject>())
            {
                var content = (string?)a["content"] ?? throw new InvalidDataException($"{path}: an added token has no content.");
                int id = a["id"]!.GetValue<int>();
                vocab[content] = id;
                added.Add((content, id));
                if (a["special"]?.GetValue<bool>() == true) specials.Add(id);
            }
        return added;
    }

    static TextTokenizer ByteLevelJson(string folder, string path, JsonObject json, Dictionary<string, int> vocab,
        List<(string, string)> merges, List<(string, int)> added)
    {
        var pre = PreTokenizer(path, json["pre_tokenizer"] as JsonObject, out bool addPrefixSpace);
        var baseVocab = vocab.Where(kv => !added.Any(a => a.Item2 == kv.Value && a.Item1 == kv.Key) || IsByteSymbolToken(kv.Key))
            .Select(kv => (kv.Key, kv.Value)).ToList();
        var options = new BpeOptions(baseVocab.Select(x => KeyValuePair.Create(x.Key, x.Value))) { Merges = merges.Select(m => m.Item1 + " " + m.Item2), ByteLevel = true };
        var bpe = BpeTokenizer.Create(options);
        IReadOnlyList<int> Encode(string text, bool first)
        {
            if (text.Length == 0) return [];
            if (addPrefixSpace && first && !text.StartsWith(' ')) text = " " + text;
            var ids = new List<int>();
            foreach (var piece in pre(text)) ids.AddRange(bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
            return ids;
        }
        TextTokenizer? self = null;
        string Decode(IReadOnlyList<int> ids)
        {
            var bytes = new List<byte>();
            foreach (var id in ids)
            {
                var t = self!.IdToToken(id);
                if (t is null) continue;
                if (self.IsAdded(id)) bytes.AddRange(Encoding.UTF8.GetBytes(t));
                else ByteLevel.AppendBytes(t, bytes);
            }
            return Encoding.UTF8.GetString(bytes.ToArray());
        }
        self = new TextTokenizer(Kind.ByteLevelBpe, folder, vocab, added, Encode, Decode);
        return self;
    }

    static bool IsByteSymbolToken(string token) => token.Length == 1;

    /// <summary>HF pre-tokenizers as successive splits: ByteLevel (GPT-2 regex), Split (regex, isolated), Digits, Punctuation, Sequence.</summary>
    static Func<string, IEnumerable<string>> PreTokenizer(string path, JsonObject? p, out bool addPrefixSpace)
    {
        addPrefixSpace = false;
        if (p is null) return t => [t];
        var steps = new List<Func<string, IEnumerable<string>>>();
        bool prefix = false;
        void Add(JsonObject step)
        {
            switch ((string?)step["type"])
            {
                case "Sequence":
                    foreach (var s in (step["pretokenizers"] as JsonArray ?? [])) Add((JsonObject)s!);
                    break;
                case "ByteLevel":
                    if (step["add_prefix_space"]?.GetValue<bool>() == true) prefix = true;
                    if (step["use_regex"]?.GetValue<bool>() != false) steps.Add(RegexSplit(Gpt2Pattern));
                    break;
                case "Split":
                    var pattern = (string?)step["pattern"]?["Regex"] ?? Regex.Escape((string?)step["pattern"]?["String"] ?? "");
                    var behavior = (string?)step["behavior"] ?? "Isolated";
                    if (behavior != "Isolated" || step["invert"]?.GetValue<bool>() == true)
                        throw new InvalidDataException($"{path}: Split pre-tokenizer with behavior {behavior} is not supported (only Isolated).");
                    steps.Add(RegexSplit(pattern));
                    break;
                case "Digits":
                    steps.Add(RegexSplit(step["individual_digits"]?.GetValue<bool>() == true ? @"\p{Nd}" : @"\p{Nd}+"));
                    break;
                case "Punctuation":
                    steps.Add(RegexSplit(@"[\p{P}\p{S}]+"));
                    break;
                default:
                    throw new InvalidDataException($"{path}: pre-tokenizer \"{step["type"]}\" is not supported.");
            }
        }
        Add(p);
        addPrefixSpace = prefix;
        return text =>
        {
            IEnumerable<string> pieces = [text];
            foreach (var s in steps) pieces = pieces.SelectMany(s).ToList();
            return pieces;
        };
    }

    const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Splits on regex matches, keeping matches and the gaps between them (HF's "Isolated" behaviour).</summary>
    static Func<string, IEnumerable<string>> RegexSplit(string pattern)
    {
        var regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        return text =>
        {
            var result = new List<string>();
            int at = 0;
            foreach (Match m in regex.Matches(text))
            {
                if (m.Length == 0) continue;
                if (m.Index > at) result.Add(text[at..m.Index]);
                result.Add(m.Value);
                at = m.Index + m.Length;
            }
            if (at < text.Length) result.Add(text[at..]);
            return result;
        };
    }

    /// <summary>SentencePiece-style BPE stored as tokenizer.json ("▁" for spaces, byte fallback), without a tokenizer.model.</summary>
    static TextTokenizer SentencePieceJson(string folder, string path, JsonObject json, JsonObject model, Dictionary<string, int> vocab,
        List<(string, string)> merges, List<(string, int)> added)
    {
        var ranks = new Dictionary<(string, string), int>();
        for (int i = 0; i < merges.Count; i++) ranks.TryAdd(merges[i], i);
        var bpe = new MergeBpe(ranks);
        bool byteFallback = model["byte_fallback"]?.GetValue<bool>() == true;
        int? unk = (string?)model["unk_token"] is { } u && vocab.TryGetValue(u, out var uid) ? uid : null;
        var norm = json.ToJsonString();
        bool prepend = norm.Contains("\"Prepend\"") || norm.Contains("\"add_prefix_space\":true") || norm.Contains("\"prepend_scheme\":\"first\"")
                       || norm.Contains("\"prepend_scheme\":\"always\"");
        IReadOnlyList<int> Encode(string text, bool first)
        {
            if (text.Length == 0) return [];
            var normalized = (prepend ? "▁" : "") + text.Replace(' ', '▁');
            var symbols = new List<string>();
            var e = StringInfo.GetTextElementEnumerator(normalized);
            for (int i = 0; i < normalized.Length;)
            {
                int len = char.IsSurrogatePair(normalized, i) ? 2 : 1;
                symbols.Add(normalized.Substring(i, len));
                i += len;
            }
            var ids = new List<int>();
            foreach (var s in bpe.Apply(symbols))
            {
                if (vocab.TryGetValue(s, out var id)) { ids.Add(id); continue; }
                if (byteFallback)
                {
                    foreach (var b in Encoding.UTF8.GetBytes(s))
                        ids.Add(vocab.TryGetValue($"<0x{b:X2}>", out var bid) ? bid
                            : throw new InvalidDataException($"{path}: byte fallback token <0x{b:X2}> missing from the vocabulary."));
                }
                else if (unk is int k) ids.Add(k);
                else throw new InvalidDataException($"{path}: \"{s}\" is not in the vocabulary and there is no unk token.");
            }
            return ids;
        }
        TextTokenizer? self = null;
        string Decode(IReadOnlyList<int> ids) => SentencePieceDecode(ids, self!);
        self = new TextTokenizer(Kind.SentencePieceBpeJson, folder, vocab, added, Encode, Decode);
        return self;
    }

    /// <summary>"▁" back to spaces, &lt;0xXX&gt; tokens back to bytes, one leading space stripped.</summary>
    static string SentencePieceDecode(IReadOnlyList<int> ids, TextTokenizer tok)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            var t = tok.IdToToken(id);
            if (t is null) continue;
            if (t.Length == 6 && t.StartsWith("<0x") && t.EndsWith('>') && byte.TryParse(t.AsSpan(3, 2), NumberStyles.HexNumber, null, out var b) && !tok.IsAdded(id))
                bytes.Add(b);
            else bytes.AddRange(Encoding.UTF8.GetBytes(tok.IsAdded(id) ? t : t.Replace('▁', ' ')));
        }
        var s = Encoding.UTF8.GetString(bytes.ToArray());
        return s.StartsWith(' ') ? s[1..] : s;
    }

    // ---------- tokenizer.model ----------

    static TextTokenizer FromSentencePieceModel(string folder, string modelPath, JsonObject? json)
    {
        SentencePieceTokenizer sp;
        using (var fs = File.OpenRead(modelPath))
        {
            try { sp = LlamaTokenizer.Create(fs, addBeginOfSentence: false, addEndOfSentence: false); }
            catch (Exception e) when (e is not IOException)
            { throw new InvalidDataException($"{modelPath}: not a SentencePiece model Microsoft.ML.Tokenizers can read ({e.Message})."); }
        }
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (t, id) in sp.Vocabulary) vocab[t] = id;
        var added = new List<(string, int)>();
        var specials = new List<int>();
        if (json is not null) added = ReadAdded(modelPath, json, vocab, out specials);
        foreach (var s in new[] { "<unk>", "<s>", "</s>" })
            if (vocab.TryGetValue(s, out var id) && !added.Any(a => a.Item2 == id)) { added.Add((s, id)); specials.Add(id); }
        TextTokenizer? self = null;
        IReadOnlyList<int> Encode(string text, bool first) => text.Length == 0 ? [] : sp.EncodeToIds(text, false, false);
        string Decode(IReadOnlyList<int> ids)
        {
            // SentencePiece decodes its own pieces; added tokens beyond its vocabulary are spliced in as text.
            var sb = new StringBuilder();
            var run = new List<int>();
            void Flush() { if (run.Count > 0) { sb.Append(sp.Decode(run, considerSpecialTokens: false)); run.Clear(); } }
            foreach (var id in ids)
            {
                if (self!.IsAdded(id)) { Flush(); sb.Append(self.IdToToken(id)); }
                else run.Add(id);
            }
            Flush();
            return sb.ToString();
        }
        self = new TextTokenizer(Kind.SentencePieceModel, folder, vocab, added, Encode, Decode);
        foreach (var s in specials) self.specialIds.Add(s);
        return self;
    }

    // ---------- special tokens ----------

    TextTokenizer WithSpecials(JsonObject? config, JsonObject? specialMap, JsonObject? gen)
    {
        string src = Path.Combine(folder, "tokenizer_config.json");
        int? Token(string field)
        {
            string? text = TokenText(config?[field], src, field) ?? TokenText(specialMap?[field], Path.Combine(folder, "special_tokens_map.json"), field);
            if (text is null) return null;
            return vocab.TryGetValue(text, out var id) ? id
                : throw new InvalidDataException($"{src}: {field} \"{text}\" is not in the vocabulary.");
        }
        int? GenId(string field) => gen?[field] switch
        {
            JsonValue v when v.TryGetValue(out int i) => i,
            JsonArray a when a.Count > 0 => a[0]!.GetValue<int>(),
            _ => null,
        };
        if (config?["added_tokens_decoder"] is JsonObject dec)
            foreach (var (idText, node) in dec)
                if (int.TryParse(idText, out var id) && node is JsonObject o && (string?)o["content"] is { } content)
                {
                    if (!vocab.ContainsKey(content) || vocab[content] != id) { vocab[content] = id; }
                    if (!added.Any(a => a.Content == content)) added.Add((content, id));
                    if (o["special"]?.GetValue<bool>() == true) specialIds.Add(id);
                }
        added.Sort((a, b) => b.Content.Length.CompareTo(a.Content.Length));
        int? bos = Token("bos_token") ?? GenId("bos_token_id");
        int? eos = Token("eos_token") ?? GenId("eos_token_id");
        var stops = new List<int>();
        if (eos is int e) stops.Add(e);
        if (gen?["eos_token_id"] is JsonArray list) stops.AddRange(list.Select(x => x!.GetValue<int>()));
        else if (GenId("eos_token_id") is int g) stops.Add(g);
        foreach (var end in new[] { "<|eot_id|>", "<|im_end|>", "<|end|>", "<|end_of_turn|>", "<end_of_turn>", "<|endoftext|>" })
            if (vocab.TryGetValue(end, out var id) && (end != "<|endoftext|>" || eos is null)) stops.Add(id);
        string? template = config?["chat_template"] switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonArray a => a.OfType<JsonObject>().FirstOrDefault(x => (string?)x["name"] == "default")?["template"]?.GetValue<string>(),
            _ => null,
        };
        var jinja = Path.Combine(folder, "chat_template.jinja");
        if (template is null && File.Exists(jinja)) template = File.ReadAllText(jinja);
        bool defaultBos = kind != Kind.ByteLevelBpe;
        BosId = bos; EosId = eos; PadId = Token("pad_token") ?? GenId("pad_token_id"); UnkId = Token("unk_token");
        StopIds = stops.Distinct().ToArray();
        AddBos = config?["add_bos_token"]?.GetValue<bool>() ?? (defaultBos && bos is not null);
        AddEos = config?["add_eos_token"]?.GetValue<bool>() ?? false;
        ChatTemplateSource = template;
        foreach (var id in new[] { bos, eos, PadId, UnkId }) if (id is int i) specialIds.Add(i);
        idToToken = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (tokText, id) in vocab) idToToken[id] = tokText;
        return this;
    }

    static string? TokenText(JsonNode? node, string file, string field) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonObject o when (string?)o["content"] is { } c => c,
        _ => throw new InvalidDataException($"{file}: {field} should be a string or an object with \"content\", found {node.ToJsonString()}."),
    };

    // ---------- public surface ----------

    public bool IsAdded(int id) => added.Any(a => a.Id == id);
    public bool IsSpecial(int id) => specialIds.Contains(id);
    public string? IdToToken(int id) => id >= 0 && id < idToToken.Length ? idToToken[id] : null;
    public int? TokenToId(string token) => vocab.TryGetValue(token, out var id) ? id : null;

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        if (addSpecialTokens && AddBos && BosId is int b) ids.Add(b);
        int at = 0;
        bool first = true;
        while (at < text.Length)
        {
            int next = -1, which = -1;
            for (int i = 0; i < added.Count; i++)
            {
                int k = text.IndexOf(added[i].Content, at, StringComparison.Ordinal);
                if (k >= 0 && (next < 0 || k < next)) { next = k; which = i; }
            }
            if (next < 0) { ids.AddRange(encodeSegment(text[at..], first)); break; }
            if (next > at) { ids.AddRange(encodeSegment(text[at..next], first)); }
            ids.Add(added[which].Id);
            at = next + added[which].Content.Length;
            first = false;
        }
        if (addSpecialTokens && AddEos && EosId is int e) ids.Add(e);
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var list = skipSpecialTokens ? ids.Where(i => !specialIds.Contains(i)).ToList() : ids.ToList();
        return decodeIds(list);
    }

    public ChatTemplate GetChatTemplate(string? nameOrFile = null)
    {
        if (nameOrFile is not null)
        {
            if (File.Exists(nameOrFile)) return ChatTemplate.Recognize(File.ReadAllText(nameOrFile), this);
            return ChatTemplate.Named(nameOrFile, this);
        }
        if (ChatTemplateSource is null)
            throw new UnrecognizedChatTemplateException(
                $"{folder} has no chat template (tokenizer_config.json \"chat_template\" or chat_template.jinja); " +
                $"choose one with --chat-template NAME ({string.Join(", ", ChatTemplate.KnownFamilies)}) or --chat-template FILE.jinja.");
        return ChatTemplate.Recognize(ChatTemplateSource, this);
    }

    public string Describe()
    {
        var k = kind switch
        {
            Kind.ByteLevelBpe => "byte-level BPE (tokenizer.json)",
            Kind.SentencePieceBpeJson => "SentencePiece-style BPE (tokenizer.json)",
            _ => "SentencePiece (tokenizer.model)",
        };
        string Name(int? id) => id is int i ? $"{IdToToken(i)} ({i})" : "none";
        string chat;
        try { chat = ChatTemplateSource is null ? "none" : ChatTemplate.Recognize(ChatTemplateSource, this).Family; }
        catch (UnrecognizedChatTemplateException) { chat = "unrecognised"; }
        return $"{k}, {VocabSize} ids, bos {Name(BosId)}{(AddBos ? " (added)" : "")}, eos {Name(EosId)}, pad {Name(PadId)}, chat template {chat}";
    }
}
