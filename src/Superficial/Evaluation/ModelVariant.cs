using Superficial.IO;
using Superficial.Alignment;
using static TorchSharp.torch;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Evaluation;

/// <summary>
/// A model as a task sees it (lm-evaluation-harness' model interface). One variant is one way of
/// producing text: "base", "base+head", "aligned", "large+transfer", "compromised+head"...
/// Implementations decide whether the prompt's chat form or raw form is used.
/// </summary>
public interface IModelVariant
{
    string Name { get; }
    /// <summary>True if the variant reads the chat form of prompts.</summary>
    bool UsesChatTemplate { get; }
    /// <summary>Greedy generations, one per prompt, cut at the first stop string.</summary>
    IReadOnlyList<string> Generate(IReadOnlyList<PromptSpec> prompts, int maxNewTokens, IReadOnlyList<string> stopStrings,
        IProgress<int>? progress = null, CancellationToken ct = default);
    /// <summary>Summed log-probability of each continuation given its prompt.</summary>
    IReadOnlyList<double> LogLikelihood(IReadOnlyList<(PromptSpec Prompt, string Continuation)> requests,
        IProgress<int>? progress = null, CancellationToken ct = default);

    /// <summary>
    /// What this variant is, as a fingerprint (models, heads, prompt form, settings), recorded beside its
    /// predictions so that resuming into a folder made by a different variant of the same name is refused
    /// rather than silently mixing results. Null: not checked.
    /// </summary>
    string? Identity => null;

    /// <summary>
    /// The prompt text exactly as this variant's model reads it, recorded in prediction files. Chat variants
    /// should override it with their rendered chat template; the default is <see cref="PromptSpec.Raw"/> for
    /// raw variants and, for chat variants, the user turn and response prefix without template markup.
    /// </summary>
    string RenderPrompt(PromptSpec prompt) => !UsesChatTemplate ? prompt.Raw
        : prompt.ResponsePrefix is null ? prompt.User : prompt.User + "\n" + prompt.ResponsePrefix;
}

/// <summary>
/// A model (optionally with a logit transform: head, transfer, recovery) as tasks see it: greedy
/// generation and log-likelihoods over prompts in raw or chat form. Does not own the model.
/// </summary>
public sealed class ModelVariant(string name, CausalLM model, TextTokenizer tokenizer, ChatTemplate? chat,
    ILogitTransform? transform = null, int batchSize = 8) : IModelVariant
{
    public string Name => name;
    public bool UsesChatTemplate => chat is not null;

    public string RenderPrompt(PromptSpec prompt) => chat is null ? PromptFormat.Raw(prompt) : PromptFormat.Chat(chat, prompt);

    public IReadOnlyList<string> Generate(IReadOnlyList<PromptSpec> prompts, int maxNewTokens, IReadOnlyList<string> stopStrings,
        IProgress<int>? progress = null, CancellationToken ct = default)
    {
        var ids = prompts.Select(p => PromptFormat.Encode(tokenizer, p, chat)).ToArray();
        var options = new GenerationOptions { MaxNewTokens = maxNewTokens, StopStrings = stopStrings, BatchSize = batchSize };
        var side = prompts.Select(p => PromptFormat.SideEncode(tokenizer, p, chat, transform)).ToArray();
        return new TextGenerator(model, tokenizer).GenerateAll(ids, options, transform, progress, ct,
            side.Any(s => s is null) ? null : side!).Select(r => r.Text).ToArray();
    }

    public IReadOnlyList<double> LogLikelihood(IReadOnlyList<(PromptSpec Prompt, string Continuation)> requests,
        IProgress<int>? progress = null, CancellationToken ct = default) =>
        Generation.LogLikelihood.Compute(model, requests.Select(r => Request(r.Prompt, r.Continuation)).ToArray(), transform, batchSize, progress, ct)
            .Select(r => r.LogProb).ToArray();

    /// <summary>
    /// Tokenises context + continuation together and takes the continuation's tokens as what follows the
    /// context's own encoding (as lm-evaluation-harness does), so merges across the boundary match how
    /// the model would read the text; falls back to encoding the continuation alone when they disagree.
    /// </summary>
    public LogLikelihoodRequest Request(PromptSpec prompt, string continuation)
    {
        var contextText = chat is null ? PromptFormat.Raw(prompt) : PromptFormat.Chat(chat, prompt);
        bool special = chat is null;
        var context = tokenizer.Encode(contextText, special);
        var whole = tokenizer.Encode(contextText + continuation, special);
        bool prefix = whole.Count > context.Count && context.SequenceEqual(whole.Take(context.Count));
        var cont = prefix ? whole.Skip(context.Count).ToArray() : tokenizer.Encode(continuation, false).ToArray();
        return new LogLikelihoodRequest(context, cont, PromptFormat.SideEncode(tokenizer, prompt, chat, transform));
    }
}

/// <summary>An <see cref="IModelVariant"/> whose model (and head, side model) are loaded on first use and released when disposed.</summary>
public sealed class LazyModelVariant(VariantSpec spec, ModelPool pool, int batchSize = 8) : IModelVariant, IDisposable
{
    ModelVariant? inner;
    Steering? steering;
    bool released;

    public string Name => spec.Name;
    public bool UsesChatTemplate => spec.Chat;
    public string? Identity => identity ??= spec.Identity();
    string? identity;

    ModelVariant Inner()
    {
        if (inner is not null) return inner;
        if (released) throw new InvalidOperationException($"variant {spec.Name} was already released.");
        var (model, tok) = pool.Acquire(spec);
        steering = Steering.Build(model, tok, spec.Steering);
        var chat = spec.Chat ? tok.GetChatTemplate(spec.ChatTemplate) : null;
        inner = new ModelVariant(spec.Name, model, tok, chat, steering.Transform, batchSize);
        return inner;
    }

    public string RenderPrompt(PromptSpec prompt) => Inner().RenderPrompt(prompt);

    public IReadOnlyList<string> Generate(IReadOnlyList<PromptSpec> prompts, int maxNewTokens, IReadOnlyList<string> stopStrings,
        IProgress<int>? progress = null, CancellationToken ct = default) => Inner().Generate(prompts, maxNewTokens, stopStrings, progress, ct);

    public IReadOnlyList<double> LogLikelihood(IReadOnlyList<(PromptSpec Prompt, string Continuation)> requests,
        IProgress<int>? progress = null, CancellationToken ct = default) => Inner().LogLikelihood(requests, progress, ct);

    public void Dispose()
    {
        if (released) return;
        released = true;
        steering?.Dispose();
        bool acquired = inner is not null;
        inner = null;
        pool.Release(spec.Model, acquired);
    }
}
