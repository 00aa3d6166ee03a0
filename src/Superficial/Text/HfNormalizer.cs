using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Superficial.Text;

/// <summary>A tokenizer.json "normalizer" (the subset real causal-LM tokenizers use), with HF's semantics.</summary>
internal abstract class HfNormalizer
{
    public abstract string Normalize(string text);

    public static HfNormalizer? Parse(JsonElement? json, string where)
    {
        if (json is not { } e) return null;
        var type = JsonRead.Str(e, "type", where) ?? throw new TokenizerFormatException($"{where}: normalizer has no 'type'.");
        switch (type)
        {
            case "Sequence":
                var list = JsonRead.Req(e, "normalizers", where, JsonValueKind.Array).EnumerateArray()
                    .Select((n, i) => Parse(n, $"{where}.normalizers[{i}]")!).ToArray();
                return new Chain(list);
            case "Prepend":
                return new Prepend(JsonRead.Str(e, "prepend", where) ?? "");
            case "Replace":
                return new Replace(HfPattern.Parse(JsonRead.Req(e, "pattern", where, JsonValueKind.Object), where), JsonRead.Str(e, "content", where) ?? "");
            case "NFC": return new Unicode(NormalizationForm.FormC);
            case "NFD": return new Unicode(NormalizationForm.FormD);
            case "NFKC": return new Unicode(NormalizationForm.FormKC);
            case "NFKD": return new Unicode(NormalizationForm.FormKD);
            case "Lowercase": return new Lower();
            case "Strip":
                return new Strip(JsonRead.Bool(e, "strip_left", where) ?? true, JsonRead.Bool(e, "strip_right", where) ?? true);
            default:
                throw new TokenizerFormatException($"{where}: normalizer type '{type}' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip).");
        }
    }

    sealed class Chain(HfNormalizer[] parts) : HfNormalizer
    {
        public override string Normalize(string text) { foreach (var p in parts) text = p.Normalize(text); return text; }
    }

    sealed class Prepend(string prefix) : HfNormalizer
    {
        // HF prepends only to non-empty text.
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    sealed class Replace(HfPattern pattern, string content) : HfNormalizer
    {
        public override string Normalize(string text) => pattern.ReplaceAll(text, content);
    }

    sealed class Unicode(NormalizationForm form) : HfNormalizer
    {
        public override string Normalize(string text) => text.Normalize(form);
    }

    sealed class Lower : HfNormalizer
    {
        public override string Normalize(string text) => text.ToLowerInvariant();
    }

    sealed class Strip(bool left, bool right) : HfNormalizer
    {
        public override string Normalize(string text)
        {
            int i = 0, j = text.Length;
            if (left) while (i < j && char.IsWhiteSpace(text[i])) i++;
            if (right) while (j > i && char.IsWhiteSpace(text[j - 1])) j--;
            return text[i..j];
        }
    }
}

/// <summary>
/// A tokenizer.json pattern: {"String": literal} or {"Regex": Oniguruma regex run with .NET's engine}. A regex
/// comes from a file, so it may backtrack catastrophically (e.g. (a|aa)+b): every match runs under a time-out,
/// and a time-out is an error naming the file and the pattern rather than a hang.
/// </summary>
internal sealed class HfPattern
{
    /// <summary>Far above what any real tokenizer pattern needs on one pre-tokenized piece of text.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    readonly string? _literal;
    readonly Regex? _regex;
    readonly string _where;

    HfPattern(string? literal, Regex? regex, string where) { _literal = literal; _regex = regex; _where = where; }

    TokenizerFormatException TimedOut(string text, RegexMatchTimeoutException e) => new(
        $"{_where}: the regex {_regex} took more than {MatchTimeout.TotalSeconds:0.#} s on a text of {text.Length} characters " +
        "(catastrophic backtracking); this tokenizer file's pattern cannot be used as is.", e);

    public static HfPattern Parse(JsonElement e, string where)
    {
        if (JsonRead.Str(e, "String", where) is { } s) return new HfPattern(s, null, where);
        if (JsonRead.Str(e, "Regex", where) is { } r)
        {
            try { return new HfPattern(null, new Regex(r, RegexOptions.CultureInvariant, MatchTimeout), where); }
            catch (ArgumentException ex)
            {
                throw new TokenizerFormatException($"{where}: regex pattern {r} cannot be compiled by .NET ({ex.Message}).", ex);
            }
        }
        throw new TokenizerFormatException($"{where}: pattern must have a 'String' or 'Regex' field.");
    }

    public string ReplaceAll(string text, string content)
    {
        if (_literal != null) return _literal.Length == 0 ? text : text.Replace(_literal, content, StringComparison.Ordinal);
        try { return _regex!.Replace(text, content.Replace("$", "$$")); }
        catch (RegexMatchTimeoutException e) { throw TimedOut(text, e); }
    }

    /// <summary>The (start, length) of every non-overlapping match, left to right.</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (_literal != null)
        {
            if (_literal.Length == 0) return result;
            for (int i = text.IndexOf(_literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(_literal, i + _literal.Length, StringComparison.Ordinal))
                result.Add((i, _literal.Length));
            return result;
        }
        // .NET matches UTF-16 units, so \p{L}/\p{N} never match an astral character; HF (Oniguruma) matches code points.
        // Match against a shadow string where each astral letter/number is two BMP characters of the same class.
        var shadow = AstralShadow(text);
        try
        {
            for (var m = _regex!.Match(shadow); m.Success; m = m.NextMatch())
            {
                if (m.Length == 0) { continue; }
                result.Add((m.Index, m.Length));
            }
        }
        catch (RegexMatchTimeoutException e) { throw TimedOut(text, e); }
        return result;
    }

    static string AstralShadow(string text)
    {
        int i = 0;
        for (; i < text.Length; i++) if (char.IsHighSurrogate(text[i])) break;
        if (i == text.Length) return text;
        var chars = text.ToCharArray();
        for (; i < chars.Length - 1; i++)
        {
            if (!char.IsHighSurrogate(chars[i]) || !char.IsLowSurrogate(chars[i + 1])) continue;
            var rune = new Rune(chars[i], chars[i + 1]);
            char stand = Rune.IsLetter(rune) ? 'a' : Rune.IsNumber(rune) ? '0' : '\0';
            if (stand != '\0') { chars[i] = stand; chars[i + 1] = stand; }
            i++;
        }
        return new string(chars);
    }
}
