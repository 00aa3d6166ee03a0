using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Superficial.Generation;

/// <summary>How to generate. Temperature 0 means greedy decoding.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 256;
    public double Temperature { get; init; }
    public double TopP { get; init; } = 1.0;
    public long Seed { get; init; }
    /// <summary>Generation of a sequence stops when its text contains one of these; the text is cut before it.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Token ids that end a sequence; null means the tokenizer's stop ids (EOS, end-of-turn tokens).</summary>
    public IReadOnlyList<int>? StopIds { get; init; }
    /// <summary>Sequences generated together (prompts are sorted by length first to limit padding).</summary>
    public int BatchSize { get; init; } = 8;
}

public enum FinishReason { Eos, StopString, Length }

/// <summary>One generated continuation. <see cref="TokenIds"/> include a final stop token if one ended it; <see cref="Text"/> does not.</summary>
public sealed record GenerationResult(IReadOnlyList<int> PromptIds, IReadOnlyList<int> TokenIds, string Text, FinishReason Finish);

/// <summary>Sees every decoding step (extraction records the aligned model's logits here).</summary>
public interface IGenerationObserver
{
    /// <param name="rows">For each row of <paramref name="logits"/>, the prompt's index in the batch passed to Generate.</param>
    /// <param name="logits">[n, V] final next-token logits (after transforms) the tokens were chosen from.</param>
    /// <param name="chosen">The token chosen for each row.</param>
    void OnStep(IReadOnlyList<int> rows, Tensor logits, IReadOnlyList<long> chosen);
}

/// <summary>
/// Batched, left-padded generation with a KV cache. Finished sequences leave the batch, so a long
/// straggler does not keep paying for the others. Without a tokenizer (bare models in tests) results
/// carry token ids only, and stop ids come from the model config.
/// </summary>
public sealed class TextGenerator(CausalLM model, TextTokenizer? tokenizer)
{
    public CausalLM Model => model;
    public TextTokenizer Tokenizer => tokenizer ?? throw new InvalidOperationException("this generator has no tokenizer.");

    /// <summary>Generates for any number of prompts in batches of <see cref="GenerationOptions.BatchSize"/>; results keep prompt order.</summary>
    /// <param name="sidePrompts">Per prompt, what a transform's side model reads instead (see <see cref="SidePrompt"/>); used only by transforms that read their own prompt.</param>
    public IReadOnlyList<GenerationResult> GenerateAll(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
        ILogitTransform? transform = null, IProgress<int>? progress = null, CancellationToken ct = default,
        IReadOnlyList<IReadOnlyList<int>>? sidePrompts = null)
    {
        if (sidePrompts is not null && sidePrompts.Count != prompts.Count)
            throw new ArgumentException($"{sidePrompts.Count} side prompts for {prompts.Count} prompts.");
        CheckContext(prompts);
        var order = Enumerable.Range(0, prompts.Count).OrderBy(i => prompts[i].Count).ToArray();
        var results = new GenerationResult[prompts.Count];
        int done = 0;
        for (int start = 0; start < order.Length; start += options.BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            var idx = order.Skip(start).Take(options.BatchSize).ToArray();
            var batch = Generate(idx.Select(i => prompts[i]).ToArray(), options with { Seed = options.Seed + start }, transform, null, ct,
                sidePrompts is null ? null : idx.Select(i => sidePrompts[i]).ToArray());
            for (int j = 0; j < idx.Length; j++) results[idx[j]] = batch[j];
            done += idx.Length;
            progress?.Report(done);
        }
        return results;
    }

    /// <summary>Generates one batch (all prompts together).</summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
        ILogitTransform? transform = null, IGenerationObserver? observer = null, CancellationToken ct = default,
        IReadOnlyList<IReadOnlyList<int>>? sidePrompts = null)
    {
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("a prompt has no tokens; give at least one (e.g. BOS).");
        CheckContext(prompts);
        transform?.CheckCompatible(model);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var dev = model.Device;
        // A sequence ends (finish: length) when it fills the model's context, whatever MaxNewTokens says.
        int context = PromptLength.ContextOf(model.Config);
        int b = prompts.Count, len = prompts.Max(p => p.Count), maxNew = Math.Min(options.MaxNewTokens, context - prompts.Min(p => p.Count));
        if (tokenizer is null && options.StopStrings.Count > 0) throw new ArgumentException("stop strings need a tokenizer.");
        long pad = tokenizer?.PadId ?? tokenizer?.EosId ?? model.Config.PadTokenId ?? 0;
        var stopIds = (options.StopIds ?? tokenizer?.StopIds ?? model.Config.EosTokenIds).Select(i => (long)i).ToHashSet();

        var padded = PaddedBatch.Left(prompts, pad, dev, capacity: len + maxNew);
        var input = padded.Ids;
        var fullMask = padded.Mask;
        var positions = padded.Positions;
        var nextPos = tensor(prompts.Select(p => (long)p.Count).ToArray(), ScalarType.Int64).to(dev);

        using var cache = model.NewCache(b, len + maxNew);
        using var session = transform?.Begin(b, len + maxNew,
            sidePrompts?.Select((sp, r) => new SidePrompt(prompts[r].Count, sp)).ToArray());
        using var gen = new torch.Generator((ulong)options.Seed, dev);
        var generated = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var finish = new FinishReason[b];
        var active = Enumerable.Range(0, b).ToList(); // original row of each current batch row
        int maxStop = options.StopStrings.Count == 0 ? 0 : options.StopStrings.Max(s => s.Length);

        for (int step = 0; step < maxNew && active.Count > 0; step++)
        {
            ct.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            int n = active.Count, t = (int)input.shape[1], past = cache.Length;
            var mask = fullMask.narrow(1, 0, past + t);
            var hidden = model.Forward(input, positions, cache, mask);
            var select = Scalars.Arange(n, dev).Times(t).Plus(t - 1);
            var hLast = hidden.reshape(n * t, -1).index_select(0, select);
            // transforms shift the head's linear logits; the family's finishing step (Gemma 2's soft-cap) comes after them
            var logits = model.HeadLogits(hLast);
            if (session is not null) logits = session.Apply(new StepContext(input, positions, mask), hidden, select, logits);
            logits = model.FinishLogits(logits);
            var next = Choose(logits, options, gen);
            var chosen = next.cpu().data<long>().ToArray();
            observer?.OnStep(active.ToArray(), logits, chosen);

            var keep = new List<long>();
            for (int i = 0; i < n; i++)
            {
                int row = active[i];
                generated[row].Add((int)chosen[i]);
                if (stopIds.Contains(chosen[i])) finish[row] = FinishReason.Eos;
                else if (maxStop > 0 && EndsWithStop(tokenizer!, generated[row], options.StopStrings, maxStop)) finish[row] = FinishReason.StopString;
                else if (prompts[row].Count + generated[row].Count >= context) finish[row] = FinishReason.Length;
                else { keep.Add(i); continue; }
            }
            if (step == maxNew - 1) break;
            fullMask.narrow(1, past + t, 1).fill_(Scalars.One);
            if (keep.Count < n)
            {
                var rows = tensor(keep.ToArray(), ScalarType.Int64).to(dev);
                cache.SelectRows(rows);
                session?.KeepRows(rows);
                fullMask = fullMask.index_select(0, rows).MoveToOuterDisposeScope();
                next = next.index_select(0, rows);
                nextPos = nextPos.index_select(0, rows).MoveToOuterDisposeScope();
                active = keep.Select(i => active[(int)i]).ToList();
            }
            input = next.unsqueeze(1).MoveToOuterDisposeScope();
            positions = nextPos.unsqueeze(1).MoveToOuterDisposeScope();
            nextPos = nextPos.Plus(1).MoveToOuterDisposeScope();
        }
        foreach (var row in active) finish[row] = FinishReason.Length;

        return Enumerable.Range(0, b).Select(r =>
        {
            var toks = generated[r];
            var textToks = finish[r] == FinishReason.Eos ? toks.Take(toks.Count - 1) : toks;
            var text = tokenizer is null ? "" : CutAtStop(tokenizer.Decode(textToks), options.StopStrings);
            return new GenerationResult(prompts[r].ToArray(), toks.ToArray(), text, finish[r]);
        }).ToArray();
    }

    /// <summary>Refuses a prompt that leaves no room for a generated token in the model's context (max_position_embeddings).</summary>
    void CheckContext(IReadOnlyList<IReadOnlyList<int>> prompts) =>
        PromptLength.Check(prompts, PromptLength.ContextOf(model.Config) - 1,
            $"the model's context ({PromptLength.ContextOf(model.Config)} positions{(model.SourceFolder is { } f ? $", {f}" : "")}) with room for one generated token");

    /// <summary>Greedy argmax, or temperature + nucleus (top-p) sampling from a seeded generator.</summary>
    internal static Tensor Choose(Tensor logits, GenerationOptions o, torch.Generator gen)
    {
        if (o.Temperature <= 0) return logits.argmax(-1);
        var probs = logits.to_type(ScalarType.Float32).Over(o.Temperature).softmax(-1);
        if (o.TopP < 1.0)
        {
            var (sorted, order) = probs.sort(-1, descending: true);
            var cum = sorted.cumsum(-1);
            sorted = sorted.masked_fill((cum - sorted).Greater(o.TopP), Scalars.Zero); // keep the smallest prefix reaching top_p
            probs = zeros_like(probs).scatter_(-1, order, sorted);
        }
        return probs.multinomial(1, false, gen).squeeze(-1);
    }

    /// <summary>Checks only the tail of the generation: a stop string of k characters spans at most k tokens.</summary>
    internal static bool EndsWithStop(TextTokenizer tokenizer, List<int> toks, IReadOnlyList<string> stops, int maxStop)
    {
        int window = Math.Min(toks.Count, 2 * maxStop + 8);
        var tail = tokenizer.Decode(toks.GetRange(toks.Count - window, window));
        return stops.Any(s => tail.Contains(s, StringComparison.Ordinal));
    }

    internal static string CutAtStop(string text, IReadOnlyList<string> stops)
    {
        int cut = text.Length;
        foreach (var s in stops)
        {
            int i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && i < cut) cut = i;
        }
        return text[..cut];
    }
}
