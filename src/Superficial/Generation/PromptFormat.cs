using Superficial.Text;

namespace Superficial.Generation;

/// <summary>
/// Turns a task's <see cref="PromptSpec"/> into the text a model reads: the raw form for base models; for
/// chat models the chat template around one user turn, then the response prefix (joined with a space
/// unless the rendered template already ends in whitespace), as the reference implementation does.
/// </summary>
public static class PromptFormat
{
    public static string Raw(PromptSpec p) => p.Raw;

    public static string Chat(ChatTemplate template, PromptSpec p)
    {
        var text = template.Render([new ChatMessage("user", p.User)], addGenerationPrompt: true);
        if (string.IsNullOrEmpty(p.ResponsePrefix)) return text;
        return text.Length > 0 && char.IsWhiteSpace(text[^1]) ? text + p.ResponsePrefix : text + " " + p.ResponsePrefix;
    }

    /// <summary>Token ids of a prompt: raw text with the tokenizer's special tokens (BOS), or the rendered chat text as is.</summary>
    public static IReadOnlyList<int> Encode(TextTokenizer tokenizer, PromptSpec p, ChatTemplate? chat) =>
        chat is null ? tokenizer.Encode(Raw(p), addSpecialTokens: true) : tokenizer.Encode(Chat(chat, p), addSpecialTokens: false);

    /// <summary>
    /// What a transform's side model reads instead of the prompt (see <see cref="SidePrompt"/>): the raw prompt,
    /// when the main model reads a chat template and the transform's side model reads its own prompt (recovery
    /// via the base); otherwise null, and the side model reads the main model's tokens.
    /// </summary>
    public static IReadOnlyList<int>? SideEncode(TextTokenizer tokenizer, PromptSpec p, ChatTemplate? chat, ILogitTransform? transform) =>
        chat is not null && transform?.ReadsOwnPrompt == true ? Encode(tokenizer, p, null) : null;
}
