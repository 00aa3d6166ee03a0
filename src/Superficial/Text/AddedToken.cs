using System.Text.RegularExpressions;

namespace Superficial.Text;

/// <summary>A token matched in raw text before the model sees it (HF "added token"), with HF's matching flags.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip = false, bool RStrip = false, bool SingleWord = false);

/// <summary>
/// Splits text on added tokens exactly as HF tokenizers' AddedVocabulary does: leftmost-longest matches,
/// lstrip/rstrip absorb neighbouring whitespace, single_word requires non-word neighbours.
/// </summary>
internal sealed class AddedTokenMatcher
{
    readonly (string Pattern, AddedToken Token)[] _patterns;
    readonly Dictionary<char, List<int>> _byFirstChar = new();

    /// <param name="tokens">The tokens with the text each must match (the content, or its normalized form).</param>
    public AddedTokenMatcher(IEnumerable<(string Pattern, AddedToken Token)> tokens)
    {
        _patterns = tokens.Where(t => t.Pattern.Length > 0).ToArray();
        for (int i = 0; i < _patterns.Length; i++)
        {
            var c = _patterns[i].Pattern[0];
            if (!_byFirstChar.TryGetValue(c, out var list)) _byFirstChar[c] = list = new List<int>();
            list.Add(i);
        }
        foreach (var list in _byFirstChar.Values)
            list.Sort((a, b) => _patterns[b].Pattern.Length.CompareTo(_patterns[a].Pattern.Length));
    }

    public bool IsEmpty => _patterns.Length == 0;

    /// <summary>Cuts <paramref name="text"/> into pieces; a piece is either plain text (Token null) or one added token.</summary>
    public List<(string Text, AddedToken? Token)> Split(string text)
    {
        var pieces = new List<(string, AddedToken?)>();
        if (_patterns.Length == 0 || text.Length == 0) { pieces.Add((text, null)); return pieces; }
        int startOffset = 0, pos = 0;
        while (pos < text.Length)
        {
            var match = LongestAt(text, pos);
            if (match < 0) { pos++; continue; }
            var (pattern, token) = _patterns[match];
            int start = pos, stop = pos + pattern.Length, matchEnd = stop;
            if (start < startOffset) { pos = matchEnd; continue; } // inside whitespace an rstrip token already took
            if (token.SingleWord)
            {
                bool startOk = start == 0 || !IsWordChar(text, start - 1, before: true);
                bool stopOk = stop == text.Length || !IsWordChar(text, stop, before: false);
                if (!startOk || !stopOk)
                {
                    // HF's leftmost-longest automaton resumes after the discarded match.
                    pos = matchEnd;
                    continue;
                }
            }
            if (token.LStrip)
            {
                int s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                start = Math.Max(s, startOffset);
            }
            if (token.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (startOffset < start) pieces.Add((text[startOffset..start], null));
            pieces.Add((text[start..stop], token));
            startOffset = stop;
            pos = matchEnd; // like HF, the automaton resumes at the end of the match itself
        }
        if (startOffset < text.Length) pieces.Add((text[startOffset..], null));
        return pieces;
    }

    int LongestAt(string text, int pos)
    {
        if (!_byFirstChar.TryGetValue(text[pos], out var candidates)) return -1;
        foreach (var i in candidates)
            if (string.CompareOrdinal(text, pos, _patterns[i].Pattern, 0, _patterns[i].Pattern.Length) == 0) return i;
        return -1;
    }

    static bool IsWordChar(string text, int index, bool before)
    {
        // Rust's regex \w on the neighbouring Unicode scalar.
        int cp;
        if (before)
            cp = index > 0 && char.IsLowSurrogate(text[index]) && char.IsHighSurrogate(text[index - 1])
                ? char.ConvertToUtf32(text[index - 1], text[index]) : text[index];
        else
            cp = char.IsHighSurrogate(text[index]) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1])
                ? char.ConvertToUtf32(text[index], text[index + 1]) : text[index];
        var s = char.ConvertFromUtf32(cp);
        return WordChar.IsMatch(s);
    }

    static readonly Regex WordChar = new(@"^[\p{L}\p{Mn}\p{Nd}\p{Pc}]+$", RegexOptions.CultureInvariant);
}
