using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Generation;

/// <summary>
/// One scoring request: the log-probability of <paramref name="Continuation"/> following <paramref name="Context"/>.
/// <paramref name="SideContext"/>: what a transform's side model reads instead of the context (see <see cref="SidePrompt"/>).
/// </summary>
public sealed record LogLikelihoodRequest(IReadOnlyList<int> Context, IReadOnlyList<int> Continuation, IReadOnlyList<int>? SideContext = null);

/// <summary>The summed log-probability and the token count of a continuation.</summary>
public readonly record struct LogLikelihoodResult(double LogProb, int Tokens, bool IsGreedy);

/// <summary>
/// Teacher-forced scoring of continuations (multiple choice, perplexity), with or without a logit
/// transform. Logits are computed only at the positions that predict continuation tokens.
/// </summary>
public static class LogLikelihood
{
    public static IReadOnlyList<LogLikelihoodResult> Compute(CausalLM model, IReadOnlyList<LogLikelihoodRequest> requests,
        ILogitTransform? transform = null, int batchSize = 8, IProgress<int>? progress = null, CancellationToken ct = default)
    {
        transform?.CheckCompatible(model);
        PromptLength.Check(requests.Select(r => (IReadOnlyList<int>)r.Context.Concat(r.Continuation).ToArray()).ToArray(), PromptLength.ContextOf(model.Config),
            $"the model's context ({PromptLength.ContextOf(model.Config)} positions) for context and continuation together");
        var results = new LogLikelihoodResult[requests.Count];
        var order = Enumerable.Range(0, requests.Count)
            .OrderBy(i => requests[i].Context.Count + requests[i].Continuation.Count).ToArray();
        int done = 0;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var idx = order.Skip(start).Take(batchSize).ToArray();
            var batch = ComputeBatch(model, idx.Select(i => requests[i]).ToArray(), transform);
            for (int j = 0; j < idx.Length; j++) results[idx[j]] = batch[j];
            done += idx.Length;
            progress?.Report(done);
        }
        return results;
    }

    static LogLikelihoodResult[] ComputeBatch(CausalLM model, LogLikelihoodRequest[] reqs, ILogitTransform? transform)
    {
        foreach (var r in reqs)
        {
            if (r.Context.Count == 0) throw new ArgumentException("a log-likelihood context needs at least one token (e.g. BOS).");
            if (r.Continuation.Count == 0) throw new ArgumentException("a log-likelihood continuation is empty.");
        }
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var dev = model.Device;
        int b = reqs.Length;
        var padded = PaddedBatch.Left(reqs.Select(r => (IReadOnlyList<int>)r.Context.Concat(r.Continuation).ToArray()).ToArray(), 0, dev);
        int len = padded.Width;
        var select = new List<long>();
        var targets = new List<long>();
        var owner = new List<int>();
        for (int r = 0; r < b; r++)
            for (int j = 0; j < reqs[r].Continuation.Count; j++)
            {
                select.Add(padded.FlatIndex(r, reqs[r].Context.Count + j - 1));   // the position that predicts continuation token j
                targets.Add(reqs[r].Continuation[j]);
                owner.Add(r);
            }
        var (input, attn, positions) = (padded.Ids, padded.Mask, padded.Positions);
        var hidden = model.Forward(input, positions, null, attn);
        var sel = tensor(select.ToArray(), ScalarType.Int64).to(dev);
        var logits = model.HeadLogits(hidden.reshape(b * len, -1).index_select(0, sel));
        if (transform is not null)
        {
            var side = reqs.Any(r => r.SideContext is not null)
                ? reqs.Select(r => new SidePrompt(r.Context.Count, r.SideContext ?? r.Context)).ToArray() : null;
            using var session = transform.Begin(b, len, side);
            logits = session.Apply(new StepContext(input, positions, attn), hidden, sel, logits);
        }
        logits = model.FinishLogits(logits);   // after any shift, as in generation
        var logp = logits.to_type(ScalarType.Float32).log_softmax(-1);
        var tgt = tensor(targets.ToArray(), ScalarType.Int64).to(dev);
        var tokenLogp = logp.gather(1, tgt.unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray();
        var greedy = logp.argmax(-1).eq(tgt).cpu().data<bool>().ToArray();
        var sums = new double[b];
        var counts = new int[b];
        var allGreedy = Enumerable.Repeat(true, b).ToArray();
        for (int i = 0; i < tokenLogp.Length; i++)
        {
            sums[owner[i]] += tokenLogp[i];
            counts[owner[i]]++;
            allGreedy[owner[i]] &= greedy[i];
        }
        return Enumerable.Range(0, b).Select(r => new LogLikelihoodResult(sums[r], counts[r], allGreedy[r])).ToArray();
    }
}
