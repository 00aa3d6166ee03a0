using System.Text;
using Microsoft.ML.Tokenizers;

namespace Superficial.Text;

/// <summary>The model stage of a tokenizer: turns one pre-tokenized word into ids, and maps ids to token strings.</summary>
internal interface ITokenModel
{
    void Encode(string word, List<int> ids);
    int? TokenToId(string token);
    string? IdToToken(int id);
    /// <summary>Largest id the model defines (added tokens not counted).</summary>
    int MaxId { get; }
}

/// <summary>
/// HF's BPE model (tokenizer.json "model": {"type": "BPE"}) on top of Microsoft.ML.Tokenizers' BpeTokenizer, which does the
/// merges. This class adds what HF has and ML.Tokenizers lacks: byte_fallback, fuse_unk, ignore_merges, tokens that
/// contain spaces, and speed on long words: BpeTokenizer's merge loop is quadratic in the word length, so SentencePiece-style
/// words are first cut where no merge can cross, and any piece still longer than <see cref="LongPiece"/> characters is
/// merged by <see cref="MergeBpe"/> (same rank order, O(n log n)).
/// </summary>
internal sealed class BpeModel : ITokenModel
{
    readonly BpeTokenizer _bpe;
    readonly Dictionary<string, int> _vocab;
    readonly string?[] _byId;
    readonly int? _unkId;
    readonly bool _byteFallback, _fuseUnk, _ignoreMerges;
    readonly int[]? _byteIds;
    readonly char? _spaceEscape;
    readonly char? _cutBefore;
    readonly List<(string A, string B)> _merges;
    MergeBpe? _longMerger;

    /// <summary>Pieces longer than this go to <see cref="MergeBpe"/> instead of BpeTokenizer.</summary>
    internal const int LongPiece = 256;

    public int MaxId { get; }

    public BpeModel(Dictionary<string, int> vocab, List<(string A, string B)> merges, string? unkToken, bool byteFallback,
        bool fuseUnk, bool ignoreMerges, string where)
    {
        _vocab = vocab;
        MaxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
        _byId = new string?[MaxId + 1];
        foreach (var (t, id) in vocab)
        {
            if (id < 0) throw new TokenizerFormatException($"{where}: vocab id {id} for '{t}' is negative.");
            _byId[id] = t;
        }
        if (unkToken != null)
            _unkId = vocab.TryGetValue(unkToken, out var u) ? u : throw new TokenizerFormatException($"{where}: unk_token '{unkToken}' is not in model.vocab.");
        (_byteFallback, _fuseUnk, _ignoreMerges, _merges) = (byteFallback, fuseUnk, ignoreMerges, merges);
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }

        // ML.Tokenizers reads merges as "a b" strings, so a space inside a token needs a stand-in character.
        if (vocab.Keys.Any(k => k.Contains(' ')))
        {
            var used = new HashSet<char>(vocab.Keys.SelectMany(k => k));
            _spaceEscape = Enumerable.Range(0xE000, 0x1900).Select(i => (char)i).First(c => !used.Contains(c));
        }

        // A SentencePiece vocabulary where "▁" only starts or continues a run of "▁" lets a word be cut before every
        // "▁" that follows another character: no token, hence no merge, spans such a point.
        if (vocab.ContainsKey("▁") && !vocab.Keys.Any(k => HasInnerMeta(k))) _cutBefore = '▁';

        var mlVocab = vocab.Select(kv => new KeyValuePair<string, int>(Escape(kv.Key), kv.Value));
        var mlMerges = merges.Select(m => Escape(m.A) + " " + Escape(m.B)).ToList();
        try
        {
            _bpe = BpeTokenizer.Create(new BpeOptions(mlVocab) { Merges = mlMerges, PreTokenizer = null, Normalizer = null });
        }
        catch (InvalidOperationException e)
        {
            throw new TokenizerFormatException($"{where}: the BPE vocabulary/merges are inconsistent ({e.Message}).", e);
        }
    }

    static bool HasInnerMeta(string token)
    {
        for (int i = 1; i < token.Length; i++) if (token[i] == '▁' && token[i - 1] != '▁') return true;
        return false;
    }

    string Escape(string s) => _spaceEscape is { } c ? s.Replace(' ', c) : s;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;
    public string? IdToToken(int id) => id >= 0 && id < _byId.Length ? _byId[id] : null;

    public void Encode(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole)) { ids.Add(whole); return; }
        // Cut the word at characters the vocabulary lacks; those go to byte fallback or <unk>, the runs between to BPE.
        int runStart = 0;
        bool lastWasUnk = false;
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            if (_vocab.ContainsKey(word.Substring(i, len))) { i += len; lastWasUnk = false; continue; }
            EncodeKnown(word, runStart, i, ids);
            var ch = word.Substring(i, len);
            if (_byteFallback && Encoding.UTF8.GetBytes(ch) is var bytes && bytes.All(b => _byteIds![b] >= 0))
            {
                foreach (var b in bytes) ids.Add(_byteIds![b]);
                lastWasUnk = false;
            }
            else if (_unkId is { } unk)
            {
                if (!(_fuseUnk && lastWasUnk && runStart == i)) ids.Add(unk);
                lastWasUnk = true;
            }
            i += len;
            runStart = i;
        }
        EncodeKnown(word, runStart, word.Length, ids);
    }

    void EncodeKnown(string word, int start, int end, List<int> ids)
    {
        if (end <= start) return;
        if (_cutBefore is not { } meta) { Merge(word[start..end], ids); return; }
        int chunk = start;
        for (int i = start + 1; i < end; i++)
            if (word[i] == meta && word[i - 1] != meta) { Merge(word[chunk..i], ids); chunk = i; }
        Merge(word[chunk..end], ids);
    }

    void Merge(string piece, List<int> ids)
    {
        if (piece.Length <= LongPiece) ids.AddRange(MergeShort(piece));
        else foreach (var token in MergeLong(piece)) ids.Add(_vocab[token]);
    }

    /// <summary>The merged ids of a piece whose characters are all in the vocabulary, by Microsoft.ML.Tokenizers.</summary>
    internal IReadOnlyList<int> MergeShort(string piece) =>
        _bpe.EncodeToIds(Escape(piece), considerPreTokenization: false, considerNormalization: false);

    /// <summary>The merged tokens of a long piece whose characters are all in the vocabulary.</summary>
    internal List<string> MergeLong(string piece)
    {
        if (_longMerger == null)
        {
            var ranks = new Dictionary<(string, string), int>();
            for (int r = 0; r < _merges.Count; r++) ranks.TryAdd(_merges[r], r);
            _longMerger = new MergeBpe(ranks);
        }
        var symbols = new List<string>(piece.Length);
        for (int i = 0; i < piece.Length;)
        {
            int len = char.IsHighSurrogate(piece[i]) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1]) ? 2 : 1;
            symbols.Add(piece.Substring(i, len));
            i += len;
        }
        return _longMerger.Apply(symbols);
    }
}

/// <summary>A SentencePiece unigram tokenizer.model encoded by Microsoft.ML.Tokenizers (each call one text segment, with its own dummy prefix).</summary>
internal sealed class SentencePieceModel : ITokenModel
{
    readonly SentencePieceTokenizer _sp;
    readonly string?[] _byId;
    readonly Dictionary<string, int> _vocab;

    public int MaxId { get; }

    public SentencePieceModel(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            _sp = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new TokenizerFormatException($"{path}: not a readable SentencePiece model ({e.Message}).", e);
        }
        _vocab = _sp.Vocabulary.ToDictionary(kv => kv.Key, kv => kv.Value);
        MaxId = _vocab.Values.Max();
        _byId = new string?[MaxId + 1];
        foreach (var (t, id) in _vocab) _byId[id] = t;
    }

    public void Encode(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        ids.AddRange(_sp.EncodeToIds(word, addBeginningOfSentence: false, addEndOfSentence: false));
    }

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;
    public string? IdToToken(int id) => id >= 0 && id < _byId.Length ? _byId[id] : null;
}
