using Superficial.Text;

namespace Superficial.Serving;

/// <summary>
/// Turns a stream of generated tokens into text pieces for streaming: each piece is new text that can no
/// longer change. Text is held back while it ends inside a UTF-8 character (the decoder shows U+FFFD) or
/// could be the start of a stop string; <see cref="Finish"/> gives the rest of the final text, so the pieces
/// always add up to the result's text.
/// </summary>
public sealed class IncrementalText(TextTokenizer tokenizer, IReadOnlyList<string> stops)
{
    readonly List<int> tokens = [];
    string emitted = "";

    /// <summary>The text that became certain with this token (often empty).</summary>
    public string Push(int token)
    {
        tokens.Add(token);
        var text = tokenizer.Decode(tokens);
        if (text.Length > 0 && text[^1] == '\uFFFD') return "";
        int safe = text.Length;
        foreach (var s in stops)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0) safe = Math.Min(safe, at);
            for (int k = Math.Min(s.Length - 1, text.Length); k > 0; k--)
                if (text.AsSpan(text.Length - k).SequenceEqual(s.AsSpan(0, k))) { safe = Math.Min(safe, text.Length - k); break; }
        }
        return Emit(text[..safe]);
    }

    /// <summary>The rest of the final text (the generation result's text).</summary>
    public string Finish(string finalText) => Emit(finalText);

    string Emit(string certain)
    {
        if (certain.Length <= emitted.Length || !certain.StartsWith(emitted, StringComparison.Ordinal)) return "";
        var piece = certain[emitted.Length..];
        emitted = certain;
        return piece;
    }
}
