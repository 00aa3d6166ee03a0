using Superficial.Tensors;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Generation;

/// <summary>
/// The state of a continuously batched decoding (serving's <c>ContinuousBatch</c>, extraction's decoder): the
/// caller's record of each row (<typeparamref name="TRow"/>), and in the same order the KV cache, each row's mask over
/// the cache, its next position and its pending token, and the transform session if any. Rows join as a prefilled
/// group (<see cref="Add"/>), leave by <see cref="Keep"/>, and left padding that no remaining row needs is dropped, so
/// a batch that never empties does not grow without bound. The state owns its tensors (outside any dispose scope).
/// </summary>
internal sealed class RunningBatch<TRow> : IDisposable
{
    readonly List<TRow> rows = [];
    KvCache? cache;
    ILogitSession? session;
    Tensor? mask;     // [B, cache length]: 1 for tokens, 0 for left padding
    Tensor? nextPos;  // [B] position of each row's pending token
    Tensor? input;    // [B, 1] each row's pending token (chosen, not yet read)

    /// <summary>The running rows, in the order of the tensors' batch dimension.</summary>
    public IReadOnlyList<TRow> Rows => rows;
    public KvCache? Cache => cache;
    public ILogitSession? Session => session;
    public Tensor Mask => mask ?? throw new InvalidOperationException("the batch is empty.");
    public Tensor Input => input ?? throw new InvalidOperationException("the batch is empty.");

    /// <summary>
    /// Adds a prefilled group after the running rows: its rows' records, its cache and session (taken over, also when
    /// this throws), its prompt mask [n, len], each row's next position [n] and first chosen token [n]; only the rows
    /// <paramref name="keep"/> (indices into the group, in order) stay, the others finished at once.
    /// </summary>
    public void Add(IReadOnlyList<TRow> group, KvCache groupCache, ILogitSession? groupSession, Tensor groupMask, Tensor groupNextPos, Tensor chosen, IReadOnlyList<int> keep)
    {
        bool cacheTaken = false, sessionTaken = false;
        try
        {
            if (keep.Count == 0) return;
            using var scope = NewDisposeScope();
            int n = (int)groupMask.shape[0];
            Tensor jMask = groupMask, jPos = groupNextPos, jInput = chosen;
            if (keep.Count < n)
            {
                var idx = tensor(keep.Select(i => (long)i).ToArray(), ScalarType.Int64).to(groupMask.device);
                groupCache.SelectRows(idx);
                groupSession?.KeepRows(idx);
                (jMask, jPos, jInput) = (groupMask.index_select(0, idx), groupNextPos.index_select(0, idx), chosen.index_select(0, idx));
            }
            jInput = jInput.unsqueeze(1);
            if (cache is null)
            {
                (cache, session) = (groupCache, groupSession);
                (cacheTaken, sessionTaken) = (true, true);
                Set(ref mask, jMask); Set(ref nextPos, jPos); Set(ref input, jInput);
            }
            else
            {
                var joined = KvCache.Concat(cache, groupCache, Math.Max(cache.Capacity - cache.Length, groupCache.Capacity - groupCache.Length));
                int total = joined.Length;
                cache.Dispose();
                cache = joined;
                if (session is not null) { sessionTaken = true; session.Append(groupSession!); }   // Append frees the group's session
                Set(ref mask, cat([PaddedBatch.PadLeft(mask!, total), PaddedBatch.PadLeft(jMask, total)], 0));
                Set(ref nextPos, cat([nextPos!, jPos], 0));
                Set(ref input, cat([input!, jInput], 0));
            }
            rows.AddRange(keep.Select(i => group[i]));
            DropPadding();
        }
        finally
        {
            if (!cacheTaken) groupCache.Dispose();
            if (!sessionTaken) groupSession?.Dispose();
        }
    }

    /// <summary>Starts a decoding step: every row's mask gains the pending token's column; returns the positions [B, 1] it is read at.</summary>
    public Tensor BeginStep()
    {
        int n = (int)Mask.shape[0];
        Set(ref mask, cat([mask!, ones([n, 1], ScalarType.Int64, mask!.device)], 1));
        return nextPos!.unsqueeze(1);
    }

    /// <summary>Ends a decoding step: <paramref name="chosen"/> [B] is each row's next pending token.</summary>
    public void EndStep(Tensor chosen)
    {
        Set(ref nextPos, nextPos!.Plus(1));
        Set(ref input, chosen.unsqueeze(1));
    }

    /// <summary>Keeps only the rows at these indices (in order); none empties the batch.</summary>
    public void Keep(IReadOnlyList<int> keep)
    {
        if (keep.Count == 0) { Reset(); return; }
        var kept = keep.Select(i => rows[i]).ToList();
        rows.Clear();
        rows.AddRange(kept);
        using var scope = NewDisposeScope();
        var idx = tensor(keep.Select(i => (long)i).ToArray(), ScalarType.Int64).to(mask!.device);
        cache!.SelectRows(idx);
        session?.KeepRows(idx);
        Set(ref mask, mask.index_select(0, idx));
        Set(ref nextPos, nextPos!.index_select(0, idx));
        Set(ref input, input!.index_select(0, idx));
        DropPadding();
    }

    /// <summary>Forgets the leading positions that every row pads.</summary>
    void DropPadding()
    {
        using var scope = NewDisposeScope();
        int len = (int)mask!.shape[1];
        int drop = PaddedBatch.SharedPadding(mask);
        if (drop <= 0) return;
        cache!.DropLeft(drop);
        session?.DropLeft(drop);
        Set(ref mask, mask.narrow(1, drop, len - drop).clone());
    }

    /// <summary>Replaces a state tensor, detaching the new one from the current scope and freeing the old one.</summary>
    static void Set(ref Tensor? field, Tensor value)
    {
        var old = field;
        field = value.DetachFromDisposeScope();
        if (old is not null && !ReferenceEquals(old, field)) old.Dispose();
    }

    /// <summary>Frees everything; the batch is empty afterwards.</summary>
    public void Reset()
    {
        rows.Clear();
        cache?.Dispose(); cache = null;
        session?.Dispose(); session = null;
        mask?.Dispose(); mask = null;
        nextPos?.Dispose(); nextPos = null;
        input?.Dispose(); input = null;
    }

    public void Dispose() => Reset();
}
