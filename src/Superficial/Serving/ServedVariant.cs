using Superficial.Generation;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Serving;

/// <summary>Token ids a model reads for one request, and what a side model that reads its own prompt reads instead (or null).</summary>
public sealed record EncodedPrompt(IReadOnlyList<int> Ids, IReadOnlyList<int>? SideIds = null);

/// <summary>
/// One named model a server offers (e.g. "base", "base+head", "aligned"): a model, its tokenizer and chat
/// template, and the logit transform (head, transfer, recovery) generation applies, with its alpha.
/// Variants may share a <see cref="CausalLM"/>; the engine runs them one after another on one thread.
/// </summary>
public sealed class ServedVariant(string name, CausalLM model, TextTokenizer tokenizer, ILogitTransform? transform = null,
    ChatTemplate? chatTemplate = null, double alpha = 1.0)
{
    public string Name => name;
    public CausalLM Model => model;
    public TextTokenizer Tokenizer => tokenizer;
    public ILogitTransform? Transform => transform;
    /// <summary>The alpha the transform was built with; a request may ask for another (see <see cref="EngineRequest.Alpha"/>).</summary>
    public double Alpha => alpha;
    public string Description => transform?.Description ?? "plain model";

    /// <summary>The chat template (the tokenizer's own unless one was given).</summary>
    public ChatTemplate ChatTemplate => chatTemplate ??= tokenizer.GetChatTemplate();

    /// <summary>
    /// Messages rendered with the chat template (generation prompt added), as <c>generate --chat</c> renders one
    /// user turn. A side model that reads its own prompt (recovery via the base) reads the raw text of the
    /// messages instead: the contents joined by blank lines, which for one user message is that message.
    /// </summary>
    public EncodedPrompt EncodeChat(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0) throw new ArgumentException("messages is empty: give at least one message.");
        var ids = tokenizer.Encode(ChatTemplate.Render(messages, addGenerationPrompt: true), addSpecialTokens: false);
        var side = transform?.ReadsOwnPrompt == true
            ? tokenizer.Encode(string.Join("\n\n", messages.Select(m => m.Content)), addSpecialTokens: true) : null;
        return new EncodedPrompt(ids, side);
    }

    /// <summary>A raw text prompt with the tokenizer's special tokens (BOS), as <c>generate</c> without --chat reads it.</summary>
    public EncodedPrompt EncodeText(string prompt) => new(tokenizer.Encode(prompt, addSpecialTokens: true));
}
