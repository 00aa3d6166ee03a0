using Superficial.Tensors;
using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>
/// Adds the superficial logit shift computed by a second model that reads the same tokens in lockstep
/// (with its own KV cache): z + alpha W_s (A h_s). With a small base model and its head this is offsite
/// alignment of a larger model; with the original base model beside a compromised model it is recovery
/// via the base. The two models must share the vocabulary (same token ids).
/// With <paramref name="readsOwnPrompt"/>, the side model reads its own rendering of each prompt (given to
/// <see cref="Begin"/> as <see cref="SidePrompt"/>s) and then the same generated or scored tokens: a base
/// model beside a chat model should see the raw prompt, as it did when the head was extracted, not a chat
/// template whose special tokens it never learned.
/// </summary>
public sealed class SideModelOffset(CausalLM side, SuperficialHead head, double alpha = 1.0, string role = "transfer", bool readsOwnPrompt = false)
    : ILogitTransform
{
    public string Description =>
        $"superficial logit shift from {role} model {side.SourceFolder ?? "(in memory)"} (hidden {side.HiddenSize}" +
        $"{(readsOwnPrompt ? "; it reads the raw prompt" : "")}){HeadTransform.AlphaText(alpha)}";

    public bool ReadsOwnPrompt => readsOwnPrompt;

    public void CheckCompatible(CausalLM main)
    {
        head.CheckFits(side, $"{role} model");
        if (main.VocabSize != side.VocabSize)
            throw new HeadException(
                $"the {role} model has a vocabulary of {side.VocabSize} ids but the model it steers has {main.VocabSize}: " +
                "the logit shift can only be added when both models share the vocabulary (same tokenizer).");
    }

    public ILogitSession Begin(int batch, int capacity, IReadOnlyList<SidePrompt>? sidePrompts = null)
    {
        if (!readsOwnPrompt || sidePrompts is null) return new Session(side, head, alpha, side.NewCache(batch, capacity));
        if (sidePrompts.Count != batch) throw new ArgumentException($"{sidePrompts.Count} side prompts for a batch of {batch}.");
        return new OwnPromptSession(side, head, alpha, sidePrompts, capacity);
    }

    static Tensor AddShift(CausalLM side, SuperficialHead head, double alpha, Tensor hs, Tensor select, Tensor logits)
    {
        var h = hs.reshape(-1, hs.shape[^1]).index_select(0, select);
        var shift = side.HeadLogits(head.Delta(h)).to_type(logits.dtype);
        return alpha == 1.0 ? logits.Plus(shift) : logits.Plus(shift.Times(alpha));
    }

    sealed class Session(CausalLM side, SuperficialHead head, double alpha, KvCache cache) : ILogitSession
    {
        KvCache cache = cache;

        public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits)
        {
            using var scope = NewDisposeScope();
            var hs = side.Forward(step.InputIds, step.PositionIds, cache, step.AttentionMask);
            return AddShift(side, head, alpha, hs, select, logits).MoveToOuterDisposeScope();
        }
        public void KeepRows(Tensor rows) => cache.SelectRows(rows);
        public void Append(ILogitSession other)
        {
            var o = (Session)other;
            var joined = KvCache.Concat(cache, o.cache, Math.Max(cache.Capacity - cache.Length, o.cache.Capacity - o.cache.Length));
            cache.Dispose();
            o.Dispose();
            cache = joined;
        }
        public void DropLeft(int columns) => cache.DropLeft(columns);
        public void Dispose() => cache.Dispose();
    }

    /// <summary>
    /// The side model reads its own prompt per row, then every later token of the main model. At the first
    /// step (the main model's prompt, plus any scored continuation) each row's main prompt is replaced by the
    /// side prompt, left-padded afresh; positions the main model asks logits for are mapped to the side
    /// sequence (same offset from the end of the prompt). Later steps (decoding) feed the same tokens.
    /// </summary>
    sealed class OwnPromptSession(CausalLM side, SuperficialHead head, double alpha, IReadOnlyList<SidePrompt> prompts, int capacity) : ILogitSession
    {
        KvCache? cache;
        Tensor? mask;       // [B, side capacity]: 1 for the side model's tokens so far, 0 for left padding
        Tensor? nextPos;    // [B] position of each row's next side token
        int past;           // side tokens (columns) in the cache

        public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits)
        {
            using var scope = NewDisposeScope();
            var dev = step.InputIds.device;
            int b = (int)step.InputIds.shape[0], t = (int)step.InputIds.shape[1];
            Tensor hs, sel;
            if (cache is null)
            {
                if (step.AttentionMask.shape[1] != t) throw new InvalidOperationException("the first step of a session must hold the whole prompt.");
                var ids = step.InputIds.cpu().data<long>().ToArray();
                var m = step.AttentionMask.cpu().data<long>().ToArray();
                var seqs = new IReadOnlyList<int>[b];
                var realLen = new int[b];
                for (int r = 0; r < b; r++)
                {
                    var real = Enumerable.Range(0, t).Where(j => m[r * t + j] != 0).Select(j => (int)ids[r * t + j]).ToList();
                    var p = prompts[r];
                    if (real.Count < p.MainPromptLength)
                        throw new InvalidOperationException($"row {r}: the main model read {real.Count} tokens, fewer than its prompt's {p.MainPromptLength}.");
                    if (p.Ids.Count == 0) throw new ArgumentException($"row {r}: the side prompt has no tokens.");
                    realLen[r] = real.Count;
                    seqs[r] = p.Ids.Concat(real.Skip(p.MainPromptLength)).ToList();
                }
                int ts = seqs.Max(x => x.Count), cap = ts + Math.Max(0, capacity - t);
                var padded = PaddedBatch.Left(seqs, 0, dev, cap);
                // main flat index r*t + j -> same offset from the end of the prompt in the side row
                var sels = select.cpu().data<long>().ToArray().Select(s =>
                {
                    int r = (int)(s / t), j = (int)(s % t);
                    int k = j - (t - realLen[r]) - prompts[r].MainPromptLength;   // position relative to the first token after the prompt
                    if (k < -1) throw new InvalidOperationException($"row {r}: logits asked inside the prompt, where the side model reads other tokens.");
                    return padded.FlatIndex(r, prompts[r].Ids.Count + k);
                }).ToArray();
                mask = padded.Mask.DetachFromDisposeScope();
                var (input, attn, positions) = (padded.Ids, padded.Attention, padded.Positions);
                cache = side.NewCache(b, cap);
                hs = side.Forward(input, positions, cache, attn);
                sel = tensor(sels, ScalarType.Int64).to(dev);
                nextPos = tensor(seqs.Select(x => (long)x.Count).ToArray(), ScalarType.Int64).to(dev).DetachFromDisposeScope();
                past = ts;
            }
            else
            {
                // later steps: the main model's new tokens, with its mask for them
                mask!.narrow(1, past, t).copy_(step.AttentionMask.narrow(1, step.AttentionMask.shape[1] - t, t));
                var positions = nextPos!.unsqueeze(1).Plus(Scalars.Arange(t, dev).unsqueeze(0));
                hs = side.Forward(step.InputIds, positions, cache, mask.narrow(1, 0, past + t));
                sel = select;
                nextPos.PlusInPlace(t);
                past += t;
            }
            return AddShift(side, head, alpha, hs, sel, logits).MoveToOuterDisposeScope();
        }

        public void KeepRows(Tensor rows)
        {
            cache?.SelectRows(rows);
            if (mask is not null) { var m = mask.index_select(0, rows).DetachFromDisposeScope(); mask.Dispose(); mask = m; }
            if (nextPos is not null) { var n = nextPos.index_select(0, rows).DetachFromDisposeScope(); nextPos.Dispose(); nextPos = n; }
        }

        /// <summary>Both sessions have read their prompts; rows are right-aligned to the longer side history.</summary>
        public void Append(ILogitSession other)
        {
            var o = (OwnPromptSession)other;
            if (cache is null || o.cache is null) throw new InvalidOperationException("sessions join a batch only after their first step.");
            using var scope = NewDisposeScope();
            int ba = (int)mask!.shape[0], bb = (int)o.mask!.shape[0], len = Math.Max(past, o.past);
            int cap = len + Math.Max((int)mask.shape[1] - past, (int)o.mask.shape[1] - o.past);
            var m = zeros([ba + bb, cap], ScalarType.Int64, mask.device);
            m.narrow(0, 0, ba).narrow(1, len - past, past).copy_(mask.narrow(1, 0, past));
            m.narrow(0, ba, bb).narrow(1, len - o.past, o.past).copy_(o.mask.narrow(1, 0, o.past));
            var joined = KvCache.Concat(cache, o.cache, cap - len);
            var pos = cat([nextPos!, o.nextPos!], 0).DetachFromDisposeScope();
            Dispose();
            o.Dispose();
            (cache, mask, nextPos, past) = (joined, m.DetachFromDisposeScope(), pos, len);
        }

        /// <summary>Drops the side model's own leading columns that every row pads (its history is not the main model's).</summary>
        public void DropLeft(int columns)
        {
            if (cache is null || past == 0) return;
            using var scope = NewDisposeScope();
            int n = PaddedBatch.SharedPadding(mask!.narrow(1, 0, past));
            if (n == 0) return;
            cache.DropLeft(n);
            var m = mask.narrow(1, n, mask.shape[1] - n).clone().DetachFromDisposeScope();
            mask.Dispose();
            mask = m;
            past -= n;
        }

        public void Dispose() { cache?.Dispose(); mask?.Dispose(); nextPos?.Dispose(); }
    }
}
