using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Superficial.Text;

/// <summary>
/// A tokenizer.json "pre_tokenizer": cuts a normalized segment into words for the model, with HF's semantics
/// (each stage of a Sequence works on the pieces the previous stage produced; ByteLevel rewrites bytes as characters).
/// </summary>
internal abstract class HfPreTokenizer
{
    /// <summary>Splits one piece. <paramref name="atStart"/>: the piece begins at offset 0 of the original input.</summary>
    public abstract void Split(string piece, bool atStart, List<string> output);

    /// <summary>True when this pre-tokenizer turns text into byte-level characters (GPT-2 style).</summary>
    public virtual bool IsByteLevel => false;

    public List<string> Run(string segment, bool atStart)
    {
        var output = new List<string>();
        Split(segment, atStart, output);
        return output;
    }

    // GPT-2's pattern; .NET's \s and \p{..} agree with Oniguruma on the BMP.
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static HfPreTokenizer? Parse(JsonElement? json, string where)
    {
        if (json is not { } e) return null;
        var type = JsonRead.Str(e, "type", where) ?? throw new TokenizerFormatException($"{where}: pre_tokenizer has no 'type'.");
        switch (type)
        {
            case "Sequence":
                return new Chain(JsonRead.Req(e, "pretokenizers", where, JsonValueKind.Array).EnumerateArray()
                    .Select((p, i) => Parse(p, $"{where}.pretokenizers[{i}]")!).ToArray());
            case "ByteLevel":
                return new ByteLevelSplit(JsonRead.Bool(e, "add_prefix_space", where) ?? true, JsonRead.Bool(e, "use_regex", where) ?? true);
            case "Split":
                return new SplitPattern(HfPattern.Parse(JsonRead.Req(e, "pattern", where, JsonValueKind.Object), where),
                    ParseBehavior(JsonRead.Str(e, "behavior", where) ?? "Isolated", where), JsonRead.Bool(e, "invert", where) ?? false);
            case "Digits":
                return new CharClass(r => Rune.IsNumber(r), (JsonRead.Bool(e, "individual_digits", where) ?? false) ? Behavior.Isolated : Behavior.Contiguous);
            case "Punctuation":
                return new CharClass(IsPunctuation, ParseBehavior(JsonRead.Str(e, "behavior", where) ?? "Isolated", where));
            case "Metaspace":
                var replacement = JsonRead.Str(e, "replacement", where) ?? "▁";
                var scheme = JsonRead.Str(e, "prepend_scheme", where)
                    ?? ((JsonRead.Bool(e, "add_prefix_space", where) ?? true) ? "always" : "never");
                return new Metaspace(replacement, scheme, JsonRead.Bool(e, "split", where) ?? true, where);
            case "Whitespace":
                return new SplitPattern(HfPatternFromRegex(@"\w+|[^\w\s]+", where), Behavior.Removed, invert: true);
            case "WhitespaceSplit":
                return new CharClass(r => Rune.IsWhiteSpace(r), Behavior.Removed);
            default:
                throw new TokenizerFormatException($"{where}: pre_tokenizer type '{type}' is not supported (supported: Sequence, ByteLevel, Split, Digits, Punctuation, Metaspace, Whitespace, WhitespaceSplit).");
        }
    }

    static HfPattern HfPatternFromRegex(string regex, string where) =>
        HfPattern.Parse(JsonDocument.Parse(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["Regex"] = regex })).RootElement, where);

    static bool IsPunctuation(Rune r) =>
        (r.Value < 128 && char.IsAscii((char)r.Value) && (char.IsPunctuation((char)r.Value) || char.IsSymbol((char)r.Value)))
        || Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    internal enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    static Behavior ParseBehavior(string s, string where) => s switch
    {
        "Removed" => Behavior.Removed, "Isolated" => Behavior.Isolated, "MergedWithPrevious" => Behavior.MergedWithPrevious,
        "MergedWithNext" => Behavior.MergedWithNext, "Contiguous" => Behavior.Contiguous,
        _ => throw new TokenizerFormatException($"{where}: unknown split behavior '{s}'."),
    };

    /// <summary>HF's NormalizedString::split: cut <paramref name="text"/> at the given matches and combine per behavior; empty pieces are dropped.</summary>
    internal static void SplitByMatches(string text, List<(int Start, int Length)> matches, Behavior behavior, bool invert, List<string> output)
    {
        // Spans covering the whole text, each flagged as a match (delimiter) or not.
        var spans = new List<(int Start, int End, bool IsMatch)>();
        int last = 0;
        foreach (var (s, l) in matches)
        {
            if (s > last) spans.Add((last, s, invert));
            spans.Add((s, s + l, !invert));
            last = s + l;
        }
        if (last < text.Length) spans.Add((last, text.Length, invert));

        var pieces = new List<(int Start, int End)>();
        switch (behavior)
        {
            case Behavior.Removed:
                foreach (var sp in spans) if (!sp.IsMatch) pieces.Add((sp.Start, sp.End));
                break;
            case Behavior.Isolated:
                foreach (var sp in spans) pieces.Add((sp.Start, sp.End));
                break;
            case Behavior.Contiguous:
                bool prevMatch = false;
                foreach (var sp in spans)
                {
                    if (sp.IsMatch && prevMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, sp.End);
                    else pieces.Add((sp.Start, sp.End));
                    prevMatch = sp.IsMatch;
                }
                break;
            case Behavior.MergedWithPrevious:
                bool prevWasText = false;
                foreach (var sp in spans)
                {
                    if (sp.IsMatch && prevWasText) pieces[^1] = (pieces[^1].Start, sp.End);
                    else pieces.Add((sp.Start, sp.End));
                    prevWasText = !sp.IsMatch;
                }
                break;
            case Behavior.MergedWithNext:
                bool pendingMatch = false;
                foreach (var sp in spans)
                {
                    if (!sp.IsMatch && pendingMatch) pieces[^1] = (pieces[^1].Start, sp.End);
                    else pieces.Add((sp.Start, sp.End));
                    pendingMatch = sp.IsMatch;
                }
                break;
        }
        foreach (var (s, e) in pieces) if (e > s) output.Add(text[s..e]);
    }

    sealed class Chain(HfPreTokenizer[] parts) : HfPreTokenizer
    {
        public override bool IsByteLevel => parts.Any(p => p.IsByteLevel);

        public override void Split(string piece, bool atStart, List<string> output)
        {
            var current = new List<string> { piece };
            foreach (var part in parts)
            {
                var next = new List<string>();
                for (int i = 0; i < current.Count; i++) part.Split(current[i], atStart && i == 0, next);
                current = next;
            }
            output.AddRange(current);
        }
    }

    sealed class ByteLevelSplit(bool addPrefixSpace, bool useRegex) : HfPreTokenizer
    {
        static readonly HfPattern Gpt2 = HfPatternFromRegex(Gpt2Pattern, "ByteLevel");

        public override bool IsByteLevel => true;

        public override void Split(string piece, bool atStart, List<string> output)
        {
            if (addPrefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
            var words = new List<string>();
            if (useRegex) SplitByMatches(piece, Gpt2.Matches(piece), Behavior.Isolated, false, words);
            else words.Add(piece);
            foreach (var w in words) output.Add(ByteLevel.Encode(w));
        }
    }

    sealed class SplitPattern(HfPattern pattern, Behavior behavior, bool invert) : HfPreTokenizer
    {
        public override void Split(string piece, bool atStart, List<string> output) =>
            SplitByMatches(piece, pattern.Matches(piece), behavior, invert, output);
    }

    /// <summary>Splits on single characters of a class (each one a match), as HF does for Digits/Punctuation.</summary>
    sealed class CharClass(Func<Rune, bool> isMatch, Behavior behavior) : HfPreTokenizer
    {
        public override void Split(string piece, bool atStart, List<string> output)
        {
            var matches = new List<(int, int)>();
            for (int i = 0; i < piece.Length;)
            {
                Rune.DecodeFromUtf16(piece.AsSpan(i), out var r, out int used);
                if (isMatch(r)) matches.Add((i, used));
                i += used;
            }
            SplitByMatches(piece, matches, behavior, false, output);
        }
    }

    sealed class Metaspace : HfPreTokenizer
    {
        readonly string _replacement;
        readonly string _scheme;
        readonly bool _split;

        public Metaspace(string replacement, string scheme, bool split, string where)
        {
            if (scheme is not ("always" or "first" or "never"))
                throw new TokenizerFormatException($"{where}: Metaspace prepend_scheme must be always, first or never, got '{scheme}'.");
            (_replacement, _scheme, _split) = (replacement, scheme, split);
        }

        public override void Split(string piece, bool atStart, List<string> output)
        {
            piece = piece.Replace(" ", _replacement, StringComparison.Ordinal);
            bool prepend = _scheme == "always" || (_scheme == "first" && atStart);
            if (prepend && !piece.StartsWith(_replacement, StringComparison.Ordinal)) piece = _replacement + piece;
            if (!_split) { if (piece.Length > 0) output.Add(piece); return; }
            var matches = new List<(int, int)>();
            for (int i = piece.IndexOf(_replacement, StringComparison.Ordinal); i >= 0; i = piece.IndexOf(_replacement, i + _replacement.Length, StringComparison.Ordinal))
                matches.Add((i, _replacement.Length));
            SplitByMatches(piece, matches, Behavior.MergedWithNext, false, output);
        }
    }
}
