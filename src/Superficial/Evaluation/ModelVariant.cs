using Superficial.Generation;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Evaluation;

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
