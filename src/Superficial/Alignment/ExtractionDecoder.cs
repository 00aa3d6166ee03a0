using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>One prompt the aligned model has finished: its tokens and, per token, the top-k logits and ids (on the model's device).</summary>
internal sealed record DecodedPrompt(int Index, IReadOnlyList<int> TokenIds, string Text, FinishReason Finish, Tensor TopLogits, Tensor TopIds) : IDisposable
{
    public void Dispose() { TopLogits.Dispose(); TopIds.Dispose(); }
}

/// <summary>
/// Extraction's decoding, as serving engines batch: up to <c>slots</c> prompts decode together greedily, and a finished
/// sequence's slot is refilled with the next prompt, so the batch never idles on its longest member. The newcomers
/// are prefilled as a group and their KV cache rows appended to the running ones (as the serving batch does). Each
/// step's top-k (logits, ids) stays on the device, written into a preallocated per-slot buffer; a finished prompt's
/// rows are cut out once. The only per-step host copy is the chosen ids ([n] integers), which the stop rules read.
/// Every row keeps its own positions and mask, so its tokens do not depend on which prompts share the batch.
/// </summary>
internal sealed class ExtractionDecoder : IDisposable
{
    readonly CausalLM model;
    readonly TextTokenizer tokenizer;
    readonly int slots, topK, vocab, maxNew, context, maxStop;
    readonly IReadOnlyList<string> stopStrings;
    readonly HashSet<long> stopIds;
    readonly long pad;
    readonly Tensor topLogits, topIds;   // [slots, maxNew, k] on the device
    readonly RunningBatch<Row> state = new();   // the running rows with their cache, masks, positions and pending tokens
    readonly Stack<int> free;

    sealed class Row(int index, int promptLength, int slot)
    {
        public readonly int Index = index, PromptLength = promptLength, Slot = slot;
        public readonly List<int> Generated = [];
        public FinishReason? Finish;
    }

    /// <param name="vocab">Ids at or above this (the base vocabulary) are never chosen nor recorded.</param>
    public ExtractionDecoder(CausalLM model, TextTokenizer tokenizer, int slots, int topK, int vocab, int maxNew, IReadOnlyList<string> stopStrings)
    {
        (this.model, this.tokenizer, this.slots, this.topK, this.vocab, this.maxNew, this.stopStrings) = (model, tokenizer, slots, topK, vocab, maxNew, stopStrings);
        context = PromptLength.ContextOf(model.Config);
        maxStop = stopStrings.Count == 0 ? 0 : stopStrings.Max(s => s.Length);
        stopIds = tokenizer.StopIds.Select(i => (long)i).ToHashSet();
        pad = tokenizer.PadId ?? tokenizer.EosId ?? model.Config.PadTokenId ?? 0;
        topLogits = empty([slots, Math.Max(1, maxNew), topK], ScalarType.Float32, model.Device).DetachFromDisposeScope();
        topIds = empty([slots, Math.Max(1, maxNew), topK], ScalarType.Int32, model.Device).DetachFromDisposeScope();
        free = new Stack<int>(Enumerable.Range(0, slots).Reverse());
    }

    /// <summary>Bytes the decoder holds per slot besides the model: the KV cache at full length and the top-k buffers.</summary>
    public static long BytesPerSlot(ModelConfig c, ScalarType dtype, int promptTokens, int maxNew, int topK)
    {
        long elem = dtype == ScalarType.Float32 ? 4 : 2;
        long kv = 2L * c.NumLayers * c.NumKvHeads * c.HeadDim * (promptTokens + maxNew) * elem;
        long top = (long)maxNew * topK * 8;
        long step = (long)c.VocabSize * 4 * 3 + (long)(c.HiddenSize + c.IntermediateSize * 2) * 4 * 4; // logits, their F32 copy, top-k; activations
        return kv + top + step;
    }

    /// <summary>Decodes every prompt (index, chat-template ids), yielding each as it finishes (not in order).</summary>
    public IEnumerable<DecodedPrompt> Run(IReadOnlyList<(int Index, IReadOnlyList<int> Ids)> prompts, CancellationToken ct)
    {
        using var noGrad = no_grad();
        int next = 0;
        var done = new List<DecodedPrompt>();
        while (next < prompts.Count || state.Rows.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            // refill free slots; a few at a time is cheaper than one by one (each join copies the cache once)
            if (next < prompts.Count && free.Count > 0 && (state.Rows.Count == 0 || free.Count >= Math.Max(1, slots / 4) || next + free.Count >= prompts.Count))
            {
                int n = Math.Min(free.Count, prompts.Count - next);
                Join(prompts.Skip(next).Take(n).ToArray(), done);
                next += n;
            }
            else Step(done);
            foreach (var d in done) yield return d;
            done.Clear();
        }
    }

    void Join(IReadOnlyList<(int Index, IReadOnlyList<int> Ids)> joining, List<DecodedPrompt> done)
    {
        using var scope = NewDisposeScope();
        var dev = model.Device;
        int n = joining.Count;
        var padded = PaddedBatch.Left(joining.Select(j => j.Ids).ToArray(), pad, dev);
        int len = padded.Width;
        var newRows = joining.Select(j => new Row(j.Index, j.Ids.Count, free.Pop())).ToList();
        var gCache = model.NewCache(n, len + maxNew);
        bool handed = false;
        try
        {
            var hidden = model.Forward(padded.Ids, padded.Positions, gCache, padded.Mask);
            var last = hidden.narrow(1, len - 1, 1).squeeze(1);
            var chosen = Choose(newRows, last);
            var gPos = tensor(joining.Select(j => (long)j.Ids.Count).ToArray(), ScalarType.Int64).to(dev);
            var keep = Record(newRows, chosen, done);
            handed = true;
            state.Add(newRows, gCache, null, padded.Mask, gPos, chosen, keep);
        }
        catch
        {
            if (!handed) gCache.Dispose();
            throw;
        }
    }

    void Step(List<DecodedPrompt> done)
    {
        using var scope = NewDisposeScope();
        var rows = state.Rows;
        int n = rows.Count;
        var positions = state.BeginStep();
        var hidden = model.Forward(state.Input, positions, state.Cache, state.Mask);
        var chosen = Choose(rows, hidden.squeeze(1));
        var keep = Record(rows, chosen, done);
        state.EndStep(chosen);
        if (keep.Count < n) state.Keep(keep);
    }

    /// <summary>The greedy token of each row's last hidden state [n, H], its top-k written into the rows' slots at their step.</summary>
    Tensor Choose(IReadOnlyList<Row> batch, Tensor last)
    {
        var logits = model.Logits(last);
        if (logits.shape[1] > vocab) logits = logits.narrow(1, 0, vocab);
        var f32 = logits.to_type(ScalarType.Float32);
        if (model.Device.type == TorchSharp.DeviceType.CPU && ChooseOnHost(batch, f32) is Tensor picked) return picked;
        var (vals, ids) = f32.topk(topK, 1, largest: true, sorted: true);
        var dev = model.Device;
        var slotT = tensor(batch.Select(r => (long)r.Slot).ToArray(), ScalarType.Int64).to(dev);
        var stepT = tensor(batch.Select(r => (long)r.Generated.Count).ToArray(), ScalarType.Int64).to(dev);
        topLogits.index_put_(vals, slotT, stepT);
        topIds.index_put_(ids.to_type(ScalarType.Int32), slotT, stepT);
        return logits.argmax(-1);
    }

    /// <summary>
    /// On the CPU: each row's top-k written straight into its slot's buffers by <see cref="TopK.Row"/>, whose first
    /// entry is the greedy token (argmax's first maximum), so no separate argmax, index_put or [n, k] temporaries.
    /// Null when a row holds a NaN (libtorch's topk and argmax, which rank NaN first, decide then).
    /// </summary>
    unsafe Tensor? ChooseOnHost(IReadOnlyList<Row> batch, Tensor logits)
    {
        if (logits.stride(1) != 1) return null;
        long rowStride = logits.stride(0);
        float* src = (float*)SkinnyLinear.Data(logits);
        float* vals = (float*)SkinnyLinear.Data(topLogits);
        int* ids = (int*)SkinnyLinear.Data(topIds);
        long steps = topLogits.shape[1];
        var chosen = new long[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            long at = (batch[i].Slot * steps + batch[i].Generated.Count) * topK;
            if (!TopK.Row(new ReadOnlySpan<float>(src + i * rowStride, vocab), new Span<float>(vals + at, topK), new Span<int>(ids + at, topK)))
                return null;
            chosen[i] = ids[at];
        }
        GC.KeepAlive(logits);
        return tensor(chosen, ScalarType.Int64);
    }

    /// <summary>Appends each row's token and finishes the rows that stopped; returns the indices of those still running.</summary>
    List<int> Record(IReadOnlyList<Row> batch, Tensor chosenT, List<DecodedPrompt> done)
    {
        var chosen = chosenT.cpu().data<long>().ToArray();
        var keep = new List<int>();
        for (int i = 0; i < batch.Count; i++)
        {
            var r = batch[i];
            r.Generated.Add((int)chosen[i]);
            if (stopIds.Contains(chosen[i])) r.Finish = FinishReason.Eos;
            else if (maxStop > 0 && TextGenerator.EndsWithStop(tokenizer, r.Generated, stopStrings, maxStop)) r.Finish = FinishReason.StopString;
            else if (r.Generated.Count >= maxNew || r.PromptLength + r.Generated.Count >= context) r.Finish = FinishReason.Length;
            if (r.Finish is null) { keep.Add(i); continue; }
            var textToks = r.Finish == FinishReason.Eos ? r.Generated.Take(r.Generated.Count - 1) : r.Generated;
            var text = TextGenerator.CutAtStop(tokenizer.Decode(textToks), stopStrings);
            int t = r.Generated.Count;
            done.Add(new DecodedPrompt(r.Index, r.Generated.ToArray(), text, r.Finish.Value,
                topLogits[r.Slot].narrow(0, 0, t).clone().DetachFromDisposeScope(), topIds[r.Slot].narrow(0, 0, t).clone().DetachFromDisposeScope()));
            free.Push(r.Slot);
        }
        return keep;
    }

    public void Dispose()
    {
        state.Dispose();
        topLogits.Dispose();
        topIds.Dispose();
    }
}
