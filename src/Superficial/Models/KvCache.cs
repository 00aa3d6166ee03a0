using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Keys and values of every layer for a batch of sequences, preallocated to a capacity and filled in
/// place, so decoding a token costs one write per layer rather than a copy of the whole cache.
/// Layout per layer: [batch, kv_heads, capacity, head_dim]. <see cref="Length"/> positions are valid.
/// Its tensors live outside any dispose scope: the cache owns them until disposed.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor[] keys, values;
    public int Batch => (int)keys[0].shape[0];
    public int Capacity { get; private set; }
    /// <summary>Positions already stored (the same for every row; left padding is masked, not skipped).</summary>
    public int Length { get; private set; }

    /// <param name="deviceOfLayer">Where layer i's keys and values live (the layer's own device when a model is split across devices).</param>
    internal KvCache(int layers, int batch, int kvHeads, int headDim, int capacity, ScalarType dtype, Func<int, Device> deviceOfLayer)
    {
        Capacity = Math.Max(1, capacity);
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            keys[i] = zeros([batch, kvHeads, Capacity, headDim], dtype, deviceOfLayer(i)).DetachFromDisposeScope();
            values[i] = zeros([batch, kvHeads, Capacity, headDim], dtype, deviceOfLayer(i)).DetachFromDisposeScope();
        }
    }

    /// <summary>Stores the new keys/values [B, kvH, T, hd] of one layer after the valid ones and returns views of all valid entries.</summary>
    internal (Tensor keys, Tensor values) Append(int layer, Tensor k, Tensor v)
    {
        int t = (int)k.size(2);
        if (Length + t > Capacity) Grow(Length + t);
        keys[layer].narrow(2, Length, t).copy_(k);
        values[layer].narrow(2, Length, t).copy_(v);
        return (keys[layer].narrow(2, 0, Length + t), values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Makes room for <paramref name="positions"/> positions in all (a step that writes the buffers itself calls this first).</summary>
    internal void Reserve(int positions) { if (positions > Capacity) Grow(positions); }

    /// <summary>Layer <paramref name="layer"/>'s whole buffers [B, kvH, <see cref="Capacity"/>, hd], contiguous.</summary>
    internal (Tensor keys, Tensor values) Layer(int layer) => (keys[layer], values[layer]);

    /// <summary>Called once per forward after every layer appended its entries.</summary>
    internal void Advance(int t) => Length += t;

    void Grow(int needed)
    {
        int cap = Math.Max(needed, Capacity * 2);
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = Regrow(keys[i], cap);
            values[i] = Regrow(values[i], cap);
        }
        Capacity = cap;
    }

    Tensor Regrow(Tensor old, int cap)
    {
        var shape = old.shape;
        var grown = zeros([shape[0], shape[1], cap, shape[3]], old.dtype, old.device).DetachFromDisposeScope();
        grown.narrow(2, 0, Length).copy_(old.narrow(2, 0, Length));
        old.Dispose();
        return grown;
    }

    /// <summary>Keeps only the given batch rows (sequences that are still generating).</summary>
    public void SelectRows(Tensor rowIndices)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            using var rows = rowIndices.to(keys[i].device);
            var k = keys[i].index_select(0, rows).DetachFromDisposeScope(); keys[i].Dispose(); keys[i] = k;
            var v = values[i].index_select(0, rows).DetachFromDisposeScope(); values[i].Dispose(); values[i] = v;
        }
    }

    /// <summary>
    /// Continuous batching: a new cache holding <paramref name="a"/>'s rows, then <paramref name="b"/>'s, each
    /// right-aligned to the longer of the two (the shorter one gains left padding, which the caller masks);
    /// <paramref name="spare"/> more positions are allocated. Both inputs are left as they were.
    /// </summary>
    public static KvCache Concat(KvCache a, KvCache b, int spare)
    {
        int len = Math.Max(a.Length, b.Length);
        var k0 = a.keys[0];
        var c = new KvCache(a.keys.Length, a.Batch + b.Batch, (int)k0.shape[1], (int)k0.shape[3], len + spare, k0.dtype, i => a.keys[i].device);
        for (int i = 0; i < a.keys.Length; i++)
        {
            c.keys[i].narrow(0, 0, a.Batch).narrow(2, len - a.Length, a.Length).copy_(a.keys[i].narrow(2, 0, a.Length));
            c.values[i].narrow(0, 0, a.Batch).narrow(2, len - a.Length, a.Length).copy_(a.values[i].narrow(2, 0, a.Length));
            c.keys[i].narrow(0, a.Batch, b.Batch).narrow(2, len - b.Length, b.Length).copy_(b.keys[i].narrow(2, 0, b.Length));
            c.values[i].narrow(0, a.Batch, b.Batch).narrow(2, len - b.Length, b.Length).copy_(b.values[i].narrow(2, 0, b.Length));
        }
        c.Length = len;
        return c;
    }

    /// <summary>Forgets the first <paramref name="n"/> positions (left padding that no remaining row needs any more).</summary>
    public void DropLeft(int n)
    {
        if (n <= 0) return;
        if (n > Length) throw new ArgumentOutOfRangeException(nameof(n), $"cannot drop {n} of {Length} positions.");
        for (int i = 0; i < keys.Length; i++)
        {
            var k = keys[i].narrow(2, n, Capacity - n).clone().DetachFromDisposeScope(); keys[i].Dispose(); keys[i] = k;
            var v = values[i].narrow(2, n, Capacity - n).clone().DetachFromDisposeScope(); values[i].Dispose(); values[i] = v;
        }
        Capacity -= n;
        Length -= n;
    }

    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}
