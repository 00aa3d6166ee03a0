using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Superficial.Serving;

/// <summary>
/// The running batch of one variant, as in continuous batching: sequences from different requests decode
/// together, each step one token; a finished or cancelled sequence leaves at once and waiting requests join
/// between steps. Joining prefills the newcomers as a group of their own (left-padded, as
/// <see cref="TextGenerator"/> does), then appends their KV cache rows and their transform session to the
/// running ones (<see cref="KvCache.Concat"/>, <see cref="ILogitSession.Append"/>); left padding that no
/// remaining row needs is dropped. Every row keeps its own positions, stop rules and sampling generator, so
/// its tokens do not depend on which other requests share the batch. Used from the engine's thread only.
/// </summary>
internal sealed class ContinuousBatch(ServedVariant variant) : IDisposable
{
    readonly CausalLM model = variant.Model;
    readonly TextTokenizer tokenizer = variant.Tokenizer;
    readonly RunningBatch<Sequence> state = new();   // the running sequences with their cache, masks, positions, pending tokens and session

    public ServedVariant Variant => variant;
    public int Count => state.Rows.Count;

    /// <summary>A sequence in the batch or about to join it.</summary>
    internal sealed class Sequence(GenerationStream stream, CancellationToken ct, HashSet<long> stopIds)
    {
        public readonly GenerationStream Stream = stream;
        public readonly CancellationToken Ct = ct;
        public readonly HashSet<long> StopIds = stopIds;
        public readonly List<int> Generated = [];
        public torch.Generator? Sampler;
        public FinishReason? Finish;
        public GenerationOptions Options => Stream.Request.Options;
        /// <summary>Scale of the transform's shift relative to the variant's alpha (1 = as built).</summary>
        public double AlphaFactor = 1.0;
    }

    public Sequence NewSequence(GenerationStream stream, CancellationToken ct)
    {
        var o = stream.Request.Options;
        var s = new Sequence(stream, ct, (o.StopIds ?? tokenizer.StopIds).Select(i => (long)i).ToHashSet());
        if (o.Temperature > 0) s.Sampler = new torch.Generator((ulong)o.Seed, model.Device);
        if (stream.Request.Alpha is double a && a != variant.Alpha) s.AlphaFactor = a / variant.Alpha;
        return s;
    }

    /// <summary>Drops sequences whose client went away; returns how many.</summary>
    public int RemoveCancelled()
    {
        var rows = state.Rows;
        var keep = Enumerable.Range(0, rows.Count).Where(i => !rows[i].Ct.IsCancellationRequested).ToList();
        if (keep.Count == rows.Count) return 0;
        int gone = rows.Count - keep.Count;
        foreach (var s in rows.Where(s => s.Ct.IsCancellationRequested)) Cancel(s);
        state.Keep(keep);
        return gone;
    }

    /// <summary>Prefills <paramref name="joining"/> as one group, chooses each one's first token, and adds those still running to the batch.</summary>
    public void Join(IReadOnlyList<Sequence> joining)
    {
        if (joining.Count == 0) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var dev = model.Device;
        int n = joining.Count, len = joining.Max(s => s.Stream.Request.Prompt.Ids.Count);
        int maxNew = joining.Max(s => s.Options.MaxNewTokens);
        long pad = tokenizer.PadId ?? tokenizer.EosId ?? model.Config.PadTokenId ?? 0;
        var padded = PaddedBatch.Left(joining.Select(s => s.Stream.Request.Prompt.Ids).ToArray(), pad, dev);
        var (gInput, gMask, positions) = (padded.Ids, padded.Mask, padded.Positions);
        var gCache = model.NewCache(n, len + maxNew);
        ILogitSession? gSession = null;
        bool handed = false;
        try
        {
            var transform = variant.Transform;
            if (transform is not null)
                gSession = transform.Begin(n, len + maxNew, transform.ReadsOwnPrompt
                    ? joining.Select(s => new SidePrompt(s.Stream.Request.Prompt.Ids.Count, s.Stream.Request.Prompt.SideIds ?? s.Stream.Request.Prompt.Ids)).ToArray()
                    : null);
            var hidden = model.Forward(gInput, positions, gCache, gMask);
            var select = Scalars.Arange(n, dev).Times(len).Plus(len - 1);
            var next = Choose(joining, StepLogits(joining, new StepContext(gInput, positions, gMask), hidden, select, gSession));
            var gPos = tensor(joining.Select(s => (long)s.Stream.Request.Prompt.Ids.Count).ToArray(), ScalarType.Int64).to(dev);
            var keep = Record(joining, next);
            handed = true;
            state.Add(joining, gCache, gSession, gMask, gPos, next, keep);
        }
        catch
        {
            if (!handed) { gCache.Dispose(); gSession?.Dispose(); }
            throw;
        }
    }

    /// <summary>One decoding step for every running sequence; returns the number of tokens generated.</summary>
    public int Step()
    {
        var rows = state.Rows;
        if (rows.Count == 0) return 0;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var dev = model.Device;
        int n = rows.Count;
        var positions = state.BeginStep();
        var hidden = model.Forward(state.Input, positions, state.Cache, state.Mask);
        var select = Scalars.Arange(n, dev);
        var next = Choose(rows, StepLogits(rows, new StepContext(state.Input, positions, state.Mask), hidden, select, state.Session));
        var keep = Record(rows, next);
        state.EndStep(next);
        if (keep.Count < n) state.Keep(keep);
        return n;
    }

    /// <summary>
    /// Logits of the selected positions as TextGenerator computes them: the head's linear logits, the transform,
    /// then the family's finishing step (Gemma 2's soft-cap). Rows asking for another alpha get z + f (T(z) - z).
    /// </summary>
    Tensor StepLogits(IReadOnlyList<Sequence> seqs, StepContext step, Tensor hidden, Tensor select, ILogitSession? s)
    {
        var hLast = hidden.reshape(hidden.shape[0] * hidden.shape[1], -1).index_select(0, select);
        var logits = model.HeadLogits(hLast);
        if (s is null) return model.FinishLogits(logits);
        var steered = s.Apply(step, hidden, select, logits);
        if (seqs.Any(q => q.AlphaFactor != 1.0))
        {
            var f = tensor(seqs.Select(q => (float)q.AlphaFactor).ToArray(), ScalarType.Float32).to(logits.device).to_type(logits.dtype).unsqueeze(1);
            steered = where(f == 1, steered, logits + f * (steered - logits));
        }
        return model.FinishLogits(steered);
    }

    /// <summary>Greedy rows take the argmax; sampling rows draw from their own seeded generator (as TextGenerator does for one prompt).</summary>
    static Tensor Choose(IReadOnlyList<Sequence> seqs, Tensor logits)
    {
        var next = logits.argmax(-1);
        if (seqs.All(s => s.Sampler is null)) return next;
        next = next.clone();
        for (int i = 0; i < seqs.Count; i++)
            if (seqs[i].Sampler is { } g)
                next[i] = TextGenerator.Choose(logits.narrow(0, i, 1), seqs[i].Options, g)[0];
        return next;
    }

    /// <summary>Appends each row's token, streams it, finishes rows that stopped; returns the indices of rows still running.</summary>
    List<int> Record(IReadOnlyList<Sequence> seqs, Tensor next)
    {
        var chosen = next.cpu().data<long>().ToArray();
        var keep = new List<int>();
        for (int i = 0; i < seqs.Count; i++)
        {
            var s = seqs[i];
            var o = s.Options;
            int maxStop = o.StopStrings.Count == 0 ? 0 : o.StopStrings.Max(x => x.Length);
            s.Generated.Add((int)chosen[i]);
            if (s.StopIds.Contains(chosen[i])) s.Finish = FinishReason.Eos;
            else
            {
                s.Stream.channel.Writer.TryWrite((int)chosen[i]);
                if (maxStop > 0 && TextGenerator.EndsWithStop(tokenizer, s.Generated, o.StopStrings, maxStop)) s.Finish = FinishReason.StopString;
                else if (s.Generated.Count >= o.MaxNewTokens) s.Finish = FinishReason.Length;
            }
            if (s.Finish is null) keep.Add(i);
            else Complete(s);
        }
        return keep;
    }

    void Complete(Sequence s)
    {
        var toks = s.Generated;
        var textToks = s.Finish == FinishReason.Eos ? toks.Take(toks.Count - 1) : toks;
        var text = TextGenerator.CutAtStop(tokenizer.Decode(textToks), s.Options.StopStrings);
        var result = new GenerationResult(s.Stream.Request.Prompt.Ids.ToArray(), toks.ToArray(), text, s.Finish!.Value);
        s.Sampler?.Dispose();
        s.Stream.done.TrySetResult(result);
        s.Stream.channel.Writer.TryComplete();
    }

    internal static void Cancel(Sequence s)
    {
        s.Sampler?.Dispose();
        s.Stream.done.TrySetCanceled(s.Ct);
        s.Stream.channel.Writer.TryComplete(new OperationCanceledException(s.Ct));
    }

    /// <summary>Fails every sequence (the engine hit an error it cannot recover from) and empties the batch.</summary>
    public void FailAll(Exception e)
    {
        foreach (var s in state.Rows)
        {
            s.Sampler?.Dispose();
            s.Stream.done.TrySetException(e);
            s.Stream.channel.Writer.TryComplete(e);
        }
        state.Reset();
    }

    public void Dispose()
    {
        foreach (var s in state.Rows) Cancel(s);
        state.Dispose();
    }
}
