using System.Text;
using System.Text.Json;

namespace Superficial.Text;

/// <summary>Whose behaviour <see cref="TextTokenizer.Load(string, TokenizerCompatibility)"/> reproduces where Hugging Face versions disagree.</summary>
public enum TokenizerCompatibility
{
    /// <summary>tokenizer.json exactly as the `tokenizers` library (and transformers 4's fast tokenizers) run it.</summary>
    Tokenizers,
    /// <summary>transformers 5: Llama-class SentencePiece tokenizers are rebuilt with a Metaspace pre-tokenizer that, unless the config
    /// says legacy, adds "▁" only at the very start (so text right after a special token gets none).</summary>
    TransformersV5,
}

/// <summary>
/// A Hugging Face model folder's tokenizer (tokenizer.json, tokenizer.model or vocab.json + merges.txt, plus the config
/// files), encoding and decoding the way HF's fast tokenizer does. The BPE merges run in Microsoft.ML.Tokenizers; the HF
/// pipeline around them (added tokens, normalizer, pre-tokenizer, byte fallback, decoder) is reproduced here.
/// </summary>
/// <remarks>
/// Known limits: only BPE models (no WordPiece/Unigram tokenizer.json; a unigram tokenizer.model is encoded by
/// Microsoft.ML.Tokenizers' SentencePiece); pre-tokenizer regexes must compile in .NET (no \p{Han}-style script classes);
/// in a regex, an astral (non-BMP) digit counts as two characters for \p{N}{1,3}-style repetition limits.
/// </remarks>
public sealed class TextTokenizer
{
    /// <summary>How the vocabulary works; shown by <see cref="Describe"/>.</summary>
    public enum TokenizerKind { ByteLevelBpe, SentencePieceBpe, Bpe }

    readonly ITokenModel _model;
    readonly HfNormalizer? _normalizer;
    readonly HfPreTokenizer? _preTokenizer;
    readonly HfDecoder? _decoder;
    readonly Dictionary<int, AddedToken> _addedById = new();
    readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);
    readonly AddedTokenMatcher _rawMatcher, _normalizedMatcher;
    readonly List<int> _stopIds = new();

    public TokenizerKind Kind { get; }
    /// <summary>The model stage (for tests that compare merge engines).</summary>
    internal ITokenModel Model => _model;
    /// <summary>Where the vocabulary came from (tokenizer.json, tokenizer.model or vocab.json).</summary>
    public string SourceFile { get; }
    /// <summary>Number of ids, added tokens included (largest id + 1).</summary>
    public int VocabSize { get; }
    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int? UnkId { get; }
    /// <summary>Ids that end a generated turn: EOS, generation_config.json's eos_token_id(s), and the chat template's end-of-turn tokens.</summary>
    public IReadOnlyList<int> StopIds => _stopIds;
    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens puts BOS first / EOS last.</summary>
    public bool AddBos { get; }
    public bool AddEos { get; }
    /// <summary>transformers' clean_up_tokenization_spaces (" ." → "." etc. after decoding); from tokenizer_config.json, default false.</summary>
    public bool CleanUpTokenizationSpaces { get; }
    /// <summary>The raw Jinja chat template (tokenizer_config.json "chat_template", or chat_template.jinja), if any.</summary>
    public string? ChatTemplateSource { get; }
    /// <summary>Where <see cref="ChatTemplateSource"/> was read from.</summary>
    public string? ChatTemplateOrigin { get; }

    public string? BosToken => BosId is { } id ? IdToToken(id) : null;
    public string? EosToken => EosId is { } id ? IdToToken(id) : null;

    /// <summary>End-of-turn markers of common chat formats; those in the template and the vocabulary become stop ids.</summary>
    static readonly string[] EndOfTurnMarkers = ["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>", "<|END_OF_TURN_TOKEN|>"];

    /// <summary>Reads the tokenizer of a model folder: tokenizer.json (preferred), else tokenizer.model, else vocab.json + merges.txt.</summary>
    public static TextTokenizer Load(string folder) => Load(folder, null, TokenizerCompatibility.Tokenizers);

    /// <summary>As <see cref="Load(string)"/>, choosing whose behaviour to reproduce where Hugging Face's own versions disagree.</summary>
    public static TextTokenizer Load(string folder, TokenizerCompatibility compatibility) => Load(folder, null, compatibility);

    /// <summary>As <see cref="Load(string)"/>, with the tokenizer.json taken from another path (used for test files named otherwise).</summary>
    internal static TextTokenizer Load(string folder, string? tokenizerJson, TokenizerCompatibility compatibility = TokenizerCompatibility.Tokenizers)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Tokenizer folder '{folder}' does not exist.");
        var config = TokenizerConfig.Read(folder);
        var json = tokenizerJson ?? Path.Combine(folder, "tokenizer.json");
        bool v5 = compatibility == TokenizerCompatibility.TransformersV5;
        if (File.Exists(json)) return FromTokenizerJson(json, config, v5);
        var spm = Path.Combine(folder, "tokenizer.model");
        if (File.Exists(spm)) return FromSentencePiece(spm, config, v5);
        var vocabPath = Path.Combine(folder, "vocab.json");
        var mergesPath = Path.Combine(folder, "merges.txt");
        if (File.Exists(vocabPath) && File.Exists(mergesPath)) return FromVocabAndMerges(vocabPath, mergesPath, config);
        throw new FileNotFoundException($"{folder}: no tokenizer.json, tokenizer.model, or vocab.json + merges.txt found.");
    }

    /// <summary>
    /// A tokenizer.model. A BPE model is converted as transformers' LlamaConverter does (vocabulary and scores → merges,
    /// byte fallback, Prepend/Replace normalizer or, with "legacy": false, a Metaspace "first" pre-tokenizer), so it
    /// encodes like the tokenizer.json HF would build; a unigram model is encoded by Microsoft.ML.Tokenizers' SentencePiece.
    /// </summary>
    static TextTokenizer FromSentencePiece(string path, TokenizerConfig config, bool v5)
    {
        var bytes = File.ReadAllBytes(path);
        var proto = SentencePieceProto.Read(path, bytes);
        var specials = new List<AddedToken>();
        for (int id = 0; id < proto.Pieces.Count; id++)
            if (proto.Pieces[id].Type is SentencePieceProto.PieceType.Control or SentencePieceProto.PieceType.Unknown)
                specials.Add(new AddedToken(id, proto.Pieces[id].Piece, Special: true, Normalized: false));
        (int, int, int) ids = (proto.BosId, proto.EosId, proto.UnkId);
        if (proto.ModelType != 2)
        {
            var model = new SentencePieceModel(path);
            return new TextTokenizer(TokenizerKind.SentencePieceBpe, path, model, null, null, HfDecoder.SentencePiece(proto.AddDummyPrefix),
                specials, config, null, null, ids);
        }
        var bpe = TokenModelCache.GetOrBuild(bytes, "sentencepiece-bpe", () =>
        {
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int id = 0; id < proto.Pieces.Count; id++) vocab.TryAdd(proto.Pieces[id].Piece, id);
            var unk = proto.UnkId >= 0 && proto.UnkId < proto.Pieces.Count ? proto.Pieces[proto.UnkId].Piece : null;
            return new BpeModel(vocab, proto.ExtractMerges(vocab), unk, proto.ByteFallback, fuseUnk: true, ignoreMerges: false, path);
        });
        HfNormalizer? normalizer = null;
        HfPreTokenizer? pre = null;
        bool prefix = config.AddPrefixSpace ?? proto.AddDummyPrefix;
        if (config.Legacy ?? !v5) // transformers 4 defaults to legacy, transformers 5 does not
            normalizer = HfNormalizer.Parse(JsonDocument.Parse(prefix
                ? """{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"""
                : """{"type":"Replace","pattern":{"String":" "},"content":"▁"}""").RootElement, path);
        else pre = LlamaMetaspace(prefix, legacy: false, path);
        return new TextTokenizer(TokenizerKind.SentencePieceBpe, path, bpe, normalizer, pre, HfDecoder.SentencePiece(prefix),
            specials, config, null, null, ids);
    }

    /// <summary>The Metaspace pre-tokenizer transformers puts on Llama tokenizers that are not in legacy mode.</summary>
    static HfPreTokenizer LlamaMetaspace(bool addPrefixSpace, bool legacy, string where)
    {
        var scheme = !addPrefixSpace ? "never" : legacy ? "always" : "first";
        return HfPreTokenizer.Parse(JsonDocument.Parse($$"""{"type":"Metaspace","replacement":"▁","prepend_scheme":"{{scheme}}","split":false}""").RootElement, where)!;
    }

    static TextTokenizer FromVocabAndMerges(string vocabPath, string mergesPath, TokenizerConfig config)
    {
        using var doc = JsonRead.Parse(vocabPath);
        var vocab = ReadVocab(doc.RootElement, vocabPath);
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version"))) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new TokenizerFormatException($"{mergesPath}: line {lineNo} must be two tokens separated by one space.");
            merges.Add((parts[0], parts[1]));
        }
        var model = new BpeModel(vocab, merges, null, false, false, false, vocabPath);
        // GPT-2's slow tokenizer: byte-level pre-tokenizer without prefix space, byte-level decoder.
        var pre = HfPreTokenizer.Parse(JsonDocument.Parse("""{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}""").RootElement, "GPT-2 default");
        var dec = HfDecoder.Parse(JsonDocument.Parse("""{"type":"ByteLevel"}""").RootElement, "GPT-2 default");
        return new TextTokenizer(TokenizerKind.ByteLevelBpe, vocabPath, model, null, pre, dec, [], config, null, null, null);
    }

    static Dictionary<string, int> ReadVocab(JsonElement e, string where)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{where}: the vocabulary must be a JSON object of token → id.");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var id))
                throw new TokenizerFormatException($"{where}: the id of token '{p.Name}' must be an integer.");
            vocab[p.Name] = id;
        }
        return vocab;
    }

    static TextTokenizer FromTokenizerJson(string path, TokenizerConfig config, bool v5)
    {
        var bytes = File.ReadAllBytes(path);
        using var doc = JsonRead.Parse(path, bytes);
        var root = doc.RootElement;
        var modelJson = JsonRead.Req(root, "model", path, JsonValueKind.Object);
        var where = $"{path}: model";
        var type = JsonRead.Str(modelJson, "type", where) ?? (JsonRead.Get(modelJson, "merges") != null ? "BPE" : null);
        if (type != "BPE")
            throw new TokenizerFormatException($"{where}: model type '{type}' is not supported; only BPE tokenizers (GPT-2, Llama, Qwen, Mistral, Phi, Falcon, SmolLM style) are.");
        if (JsonRead.Get(modelJson, "dropout") is { ValueKind: JsonValueKind.Number } dr && dr.GetDouble() > 0)
            throw new TokenizerFormatException($"{where}: BPE dropout {dr.GetDouble()} is not supported (it makes encoding random).");
        foreach (var f in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(JsonRead.Str(modelJson, f, where)))
                throw new TokenizerFormatException($"{where}: '{f}' is not supported (causal-LM BPE tokenizers leave it empty).");

        var model = TokenModelCache.GetOrBuild(bytes, "tokenizer.json-bpe", () =>
        {
            var vocab = ReadVocab(JsonRead.Req(modelJson, "vocab", where, JsonValueKind.Object), $"{where}.vocab");
            var merges = new List<(string, string)>();
            int i = 0;
            foreach (var m in JsonRead.Req(modelJson, "merges", where, JsonValueKind.Array).EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String)
                {
                    var parts = m.GetString()!.Split(' ');
                    // "a b" is ambiguous when a token holds a space; HF cannot read such a line either, so it is skipped.
                    if (parts.Length == 2) merges.Add((parts[0], parts[1]));
                }
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                    merges.Add((m[0].GetString()!, m[1].GetString()!));
                else throw new TokenizerFormatException($"{where}.merges[{i}]: expected \"a b\" or [\"a\", \"b\"].");
                i++;
            }
            return new BpeModel(vocab, merges, JsonRead.Str(modelJson, "unk_token", where),
                JsonRead.Bool(modelJson, "byte_fallback", where) ?? false, JsonRead.Bool(modelJson, "fuse_unk", where) ?? false,
                JsonRead.Bool(modelJson, "ignore_merges", where) ?? false, where);
        });

        var normalizer = HfNormalizer.Parse(JsonRead.Get(root, "normalizer"), $"{path}: normalizer");
        var pre = HfPreTokenizer.Parse(JsonRead.Get(root, "pre_tokenizer"), $"{path}: pre_tokenizer");
        var decoder = HfDecoder.Parse(JsonRead.Get(root, "decoder"), $"{path}: decoder");

        var added = new List<AddedToken>();
        if (JsonRead.Get(root, "added_tokens") is { } at)
        {
            if (at.ValueKind != JsonValueKind.Array) throw JsonRead.Bad(path, "added_tokens", "a list", at);
            int k = 0;
            foreach (var t in at.EnumerateArray())
            {
                var w = $"{path}: added_tokens[{k++}]";
                added.Add(TokenizerConfig.ParseAddedToken(JsonRead.Int(t, "id", w) ?? throw new TokenizerFormatException($"{w}: no 'id'."), t, w));
            }
        }

        var (addsBos, addsEos) = TemplateSpecials(JsonRead.Get(root, "post_processor"));
        var kind = pre?.IsByteLevel == true ? TokenizerKind.ByteLevelBpe
            : model.TokenToId("▁") is not null || pre is null && normalizer != null ? TokenizerKind.SentencePieceBpe : TokenizerKind.Bpe;
        if (v5 && kind == TokenizerKind.SentencePieceBpe && config.TokenizerClass is "LlamaTokenizer" or "LlamaTokenizerFast")
        {
            // transformers 5 keeps only the vocabulary and merges of a Llama tokenizer.json and rebuilds the rest.
            bool prefix = config.AddPrefixSpace ?? true;
            normalizer = null;
            pre = LlamaMetaspace(prefix, config.Legacy ?? false, path);
            decoder = HfDecoder.SentencePiece(prefix);
        }
        return new TextTokenizer(kind, path, model, normalizer, pre, decoder, added, config, addsBos, addsEos, null);
    }

    /// <summary>Whether a TemplateProcessing post-processor puts a special token before / after the sequence.</summary>
    static (bool? Bos, bool? Eos) TemplateSpecials(JsonElement? post)
    {
        if (post is not { } p) return (null, null);
        var type = p.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type == "Sequence" && p.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var inner in list.EnumerateArray())
                if (TemplateSpecials(inner) is { Bos: not null } r) return r;
            return (null, null);
        }
        if (type != "TemplateProcessing" || !p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) return (null, null);
        var items = single.EnumerateArray().ToList();
        if (items.Count == 0) return (false, false);
        return (items[0].TryGetProperty("SpecialToken", out _), items.Count > 1 && items[^1].TryGetProperty("SpecialToken", out _));
    }

    TextTokenizer(TokenizerKind kind, string sourceFile, ITokenModel model, HfNormalizer? normalizer, HfPreTokenizer? pre, HfDecoder? decoder,
        List<AddedToken> added, TokenizerConfig config, bool? templateAddsBos, bool? templateAddsEos, (int Bos, int Eos, int Unk)? spIds)
    {
        (Kind, SourceFile, _model, _normalizer, _preTokenizer, _decoder) = (kind, sourceFile, model, normalizer, pre, decoder);

        foreach (var t in added) AddToken(t);
        foreach (var (t, source) in config.AddedTokensDecoder)
        {
            if (_addedByContent.ContainsKey(t.Content)) continue; // HF keeps the first definition of a content
            if (_addedById.TryGetValue(t.Id, out var other))
                throw new TokenizerFormatException($"{source}: id {t.Id} is '{t.Content}' here but '{other.Content}' in {sourceFile}.");
            AddToken(t);
        }

        // Special tokens named in the config files are added tokens too (transformers adds any that are missing).
        int? Resolve(string name, int? fallbackId)
        {
            if (config.SpecialTokens.TryGetValue(name, out var v))
            {
                var id = EnsureSpecial(v.Content, v.Source);
                return id;
            }
            return fallbackId;
        }
        foreach (var (content, source) in config.AdditionalSpecialTokens) EnsureSpecial(content, source);

        BosId = Resolve("bos_token", config.GenBosId ?? (spIds?.Bos >= 0 ? spIds?.Bos : null));
        EosId = Resolve("eos_token", config.GenEosIds.Count > 0 ? config.GenEosIds[0] : spIds?.Eos >= 0 ? spIds?.Eos : null);
        UnkId = Resolve("unk_token", spIds?.Unk >= 0 ? spIds?.Unk : null);
        PadId = Resolve("pad_token", config.GenPadId);

        int maxId = Math.Max(_model.MaxId, _addedById.Count == 0 ? -1 : _addedById.Keys.Max());
        VocabSize = maxId + 1;
        foreach (var (name, id) in new[] { ("bos_token_id", BosId), ("eos_token_id", EosId), ("pad_token_id", PadId) })
            if (id is { } x && (x < 0 || x >= VocabSize))
                throw new TokenizerFormatException($"{TokenizerConfig.GenerationFile}: {name} {x} is outside the vocabulary (0..{VocabSize - 1}).");
        foreach (var x in config.GenEosIds)
            if (x < 0 || x >= VocabSize)
                throw new TokenizerFormatException($"{TokenizerConfig.GenerationFile}: eos_token_id {x} is outside the vocabulary (0..{VocabSize - 1}).");

        bool sentencePiece = kind == TokenizerKind.SentencePieceBpe;
        AddBos = config.AddBosToken ?? templateAddsBos ?? sentencePiece;
        AddEos = config.AddEosToken ?? templateAddsEos ?? false;
        CleanUpTokenizationSpaces = config.CleanUpTokenizationSpaces;
        ChatTemplateSource = config.ChatTemplate;
        ChatTemplateOrigin = config.ChatTemplateOrigin;

        _rawMatcher = new AddedTokenMatcher(_addedById.Values.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        // HF matches a normalized added token by its normalized form ("</s>" under Prepend("▁") is "▁</s>").
        _normalizedMatcher = new AddedTokenMatcher(_addedById.Values.Where(t => t.Normalized)
            .Select(t => (_normalizer?.Normalize(t.Content) ?? t.Content, t)));

        void AddStop(int? id) { if (id is { } x && !_stopIds.Contains(x)) _stopIds.Add(x); }
        AddStop(EosId);
        foreach (var x in config.GenEosIds) AddStop(x);
        if (ChatTemplateSource != null)
            foreach (var marker in EndOfTurnMarkers)
                if (ChatTemplateSource.Contains(marker, StringComparison.Ordinal)) AddStop(TokenToId(marker));
    }

    void AddToken(AddedToken t)
    {
        _addedById[t.Id] = t;
        _addedByContent.TryAdd(t.Content, t);
    }

    int EnsureSpecial(string content, string source)
    {
        if (_addedByContent.TryGetValue(content, out var existing)) return existing.Id;
        var id = _model.TokenToId(content)
            ?? throw new TokenizerFormatException($"{source}: token '{content}' is not in the vocabulary of {SourceFile}.");
        AddToken(new AddedToken(id, content, Special: true, Normalized: false));
        return id;
    }

    /// <summary>
    /// Token ids of <paramref name="text"/>. Added/special token strings in the text become their single ids, as in HF.
    /// With <paramref name="addSpecialTokens"/>, BOS/EOS are added per <see cref="AddBos"/>/<see cref="AddEos"/>.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens && AddBos && BosId is { } bos) ids.Add(bos);
        int offset = 0;
        foreach (var (piece, token) in _rawMatcher.Split(text))
        {
            if (token != null) ids.Add(token.Id);
            else EncodeSegment(piece, offset == 0, ids);
            offset += piece.Length;
        }
        if (addSpecialTokens && AddEos && EosId is { } eos) ids.Add(eos);
        return ids;
    }

    void EncodeSegment(string segment, bool atStart, List<int> ids)
    {
        var normalized = _normalizer?.Normalize(segment) ?? segment;
        bool first = true;
        foreach (var (piece, token) in _normalizedMatcher.Split(normalized))
        {
            if (token != null) ids.Add(token.Id);
            else if (_preTokenizer == null) _model.Encode(piece, ids);
            else foreach (var word in _preTokenizer.Run(piece, atStart && first)) _model.Encode(word, ids);
            first = false;
        }
    }

    /// <summary>The text of <paramref name="ids"/>, as HF's decode (special tokens dropped when <paramref name="skipSpecialTokens"/>; unknown ids ignored).</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => Decode(ids, skipSpecialTokens, CleanUpTokenizationSpaces);

    /// <summary>Decode with an explicit clean-up choice (the `tokenizers` library itself never cleans up).</summary>
    internal string Decode(IEnumerable<int> ids, bool skipSpecialTokens, bool cleanUp)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (_addedById.TryGetValue(id, out var added))
            {
                if (!(skipSpecialTokens && added.Special)) tokens.Add(added.Content);
            }
            else if (_model.IdToToken(id) is { } t) tokens.Add(t);
        }
        var text = _decoder == null ? string.Join(" ", tokens) : string.Concat(_decoder.DecodeChain(tokens));
        return cleanUp ? CleanUp(text) : text;
    }

    /// <summary>transformers' clean_up_tokenization.</summary>
    static string CleanUp(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    /// <summary>The token string of an id (the vocabulary form, e.g. "Ġworld" or "▁world"), or null when the id is unknown.</summary>
    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var t) ? t.Content : _model.IdToToken(id);

    /// <summary>The id of a token string as it appears in the vocabulary, or null.</summary>
    public int? TokenToId(string token) => _addedByContent.TryGetValue(token, out var t) ? t.Id : _model.TokenToId(token);

    /// <summary>Whether an id is a special added token (skipped by Decode with skipSpecialTokens).</summary>
    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var t) && t.Special;

    /// <summary>The chat template: null recognises <see cref="ChatTemplateSource"/>; otherwise a family name or a path to a .jinja file.</summary>
    public ChatTemplate GetChatTemplate(string? nameOrFile = null)
    {
        if (nameOrFile == null)
        {
            if (ChatTemplateSource == null)
                throw new UnrecognizedChatTemplateException(
                    $"The tokenizer in {Path.GetDirectoryName(SourceFile)} has no chat template (no 'chat_template' in {TokenizerConfig.ConfigFile}, no {TokenizerConfig.JinjaFile}). " +
                    ChatTemplate.PickHint);
            return ChatTemplate.Recognize(ChatTemplateSource, this);
        }
        if (ChatTemplate.KnownFamilies.Contains(nameOrFile)) return ChatTemplate.Named(nameOrFile, this);
        if (File.Exists(nameOrFile)) return ChatTemplate.Recognize(File.ReadAllText(nameOrFile), this);
        throw new UnrecognizedChatTemplateException($"'{nameOrFile}' is neither a chat template family nor an existing file. {ChatTemplate.PickHint}");
    }

    /// <summary>One line for `superficial inspect`.</summary>
    public string Describe()
    {
        string Tok(int? id) => id is { } x ? $"{IdToToken(x)} ({x})" : "none";
        string kind = Kind switch
        {
            TokenizerKind.ByteLevelBpe => "byte-level BPE",
            TokenizerKind.SentencePieceBpe => Path.GetFileName(SourceFile) == "tokenizer.model" ? "SentencePiece BPE (tokenizer.model)" : "SentencePiece BPE",
            _ => "BPE",
        };
        string template;
        if (ChatTemplateSource == null) template = "none";
        else
        {
            try { template = ChatTemplate.Recognize(ChatTemplateSource, this).Family; }
            catch (UnrecognizedChatTemplateException) { template = "unrecognised"; }
        }
        return $"{kind}, vocab {VocabSize}, bos {Tok(BosId)}, eos {Tok(EosId)}, pad {Tok(PadId)}, " +
               $"adds bos {(AddBos ? "yes" : "no")}, stop ids [{string.Join(", ", StopIds)}], chat template {template}";
    }
}
