using System.Runtime.Intrinsics;

namespace Superficial.Tensors;

/// <summary>
/// The k largest of one row of F32 logits, sorted: largest first, equal values by the lower index first, so entry 0
/// is the token greedy decoding picks (argmax's first maximum). The values are the row's own, so they equal
/// libtorch's topk bit for bit; only the order of equal values is fixed here where libtorch leaves it open.
/// <para>
/// How (a radix select): each value becomes a 32-bit key that orders as the values do (-0 as +0), 8 at a time. A
/// histogram of the keys' top 11 bits finds the bucket that holds the k-th largest: everything above it is in the
/// top k, and only that bucket's entries are looked at again, on the next 11 bits and then the last 10, until the
/// entries left all have the k-th largest value (the lowest indices among them are taken). The k entries are then
/// sorted by value, then index. For a 32000-entry row and k = 500 this takes about a third of the min-heap scan it
/// replaced (which inserted some 2000 entries into a heap of 500), and a fraction of libtorch's topk. It allocates
/// nothing after a thread's first row (its buffers are kept per thread). A row holding a NaN is refused (false) and
/// left to libtorch, which ranks NaN above every number.
/// </para>
/// </summary>
public static class TopK
{
    const int Buckets = 2048; // 11 bits
    /// <summary>The refining levels after the first: (shift, bits) of the key's next 11 bits, then its last 10.</summary>
    static readonly (int Shift, int Bits)[] Levels = [(10, 11), (0, 10)];

    [ThreadStatic] static uint[]? keysBuf;
    [ThreadStatic] static int[]? histBuf, boundaryBuf;
    [ThreadStatic] static ulong[]? pickedBuf;

    /// <summary>Writes the top <c>values.Length</c> of <paramref name="row"/> into values and ids; false if the row holds a NaN.</summary>
    public static bool Row(ReadOnlySpan<float> row, Span<float> values, Span<int> ids)
    {
        int k = values.Length, n = row.Length;
        if (k == 0) return !HasNaN(row);
        if (k > n || ids.Length != k) throw new ArgumentException($"top-{k} of a row of {n} into {ids.Length} ids");
        var keys = Buffer(ref keysBuf, n);
        if (!Keys(row, keys)) return false;

        // Level 1 over the whole row: the bucket of the k-th largest key. Four interleaved histograms, so that runs
        // of equal buckets do not wait on one counter.
        var hist = Buffer(ref histBuf, 4 * Buckets).AsSpan(0, 4 * Buckets);
        hist.Clear();
        int j = 0;
        for (; j + 4 <= n; j += 4)
        {
            hist[(int)(keys[j] >> 21)]++;
            hist[Buckets + (int)(keys[j + 1] >> 21)]++;
            hist[2 * Buckets + (int)(keys[j + 2] >> 21)]++;
            hist[3 * Buckets + (int)(keys[j + 3] >> 21)]++;
        }
        for (; j < n; j++) hist[(int)(keys[j] >> 21)]++;
        for (int b = 0; b < Buckets; b++) hist[b] += hist[Buckets + b] + hist[2 * Buckets + b] + hist[3 * Buckets + b];
        int top = Buckets - 1, above = 0;
        while (above + hist[top] < k) above += hist[top--];

        // Entries above that bucket are in the top k for sure; the bucket's own entries (in index order) are refined.
        var picked = Buffer(ref pickedBuf, k);
        var boundary = Buffer(ref boundaryBuf, n);
        int sure = 0, m = 0;
        uint prefix = (uint)top, lowest = prefix << 21;
        j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var low = Vector256.Create(lowest);
            for (; j + 8 <= n; j += 8)
                if (Vector256.GreaterThanOrEqualAny(Vector256.Create(keys, j), low))   // most of a row lies below: 8 at a time
                    for (int t = j; t < j + 8; t++) Collect(t);
        }
        for (; j < n; j++) Collect(j);
        void Collect(int at)
        {
            uint bucket = keys[at] >> 21;
            if (bucket > prefix) picked[sure++] = Packed(keys[at], at);
            else if (bucket == prefix) boundary[m++] = at;
        }
        // Levels 2 and 3: the next 11 bits, then the last 10, over the boundary entries only.
        foreach (var (shift, bits) in Levels)
        {
            if (sure + m == k) break;
            int size = 1 << bits;
            var h = hist[..size];
            h.Clear();
            uint mask = (uint)(size - 1);
            for (int i = 0; i < m; i++) h[(int)((keys[boundary[i]] >> shift) & mask)]++;
            int sub = size - 1, subAbove = 0;
            while (sure + subAbove + h[sub] < k) subAbove += h[sub--];
            int kept = 0;
            for (int i = 0; i < m; i++)
            {
                int at = boundary[i];
                uint s = (keys[at] >> shift) & mask;
                if (s > (uint)sub) picked[sure++] = Packed(keys[at], at);
                else if (s == (uint)sub) boundary[kept++] = at;
            }
            m = kept;
        }
        // What is left of the boundary has one key (or fits whole): its lowest indices fill the top k.
        for (int i = 0; sure < k; i++) picked[sure++] = Packed(keys[boundary[i]], boundary[i]);

        var chosen = picked.AsSpan(0, k);
        chosen.Sort(); // ascending by (key, then higher index first): read it backwards
        for (int i = 0; i < k; i++)
        {
            int at = (int)~(uint)chosen[k - 1 - i];
            values[i] = row[at];
            ids[i] = at;
        }
        return true;
    }

    /// <summary>Key and index in one number whose order is (key ascending, index descending).</summary>
    static ulong Packed(uint key, int index) => ((ulong)key << 32) | ~(uint)index;

    /// <summary>
    /// Keys that order as the values do: a float's bits with the sign flipped for positives and all bits flipped for
    /// negatives; -0 is first made +0 (x + 0), as the two compare equal. False if the row holds a NaN.
    /// </summary>
    static bool Keys(ReadOnlySpan<float> row, uint[] keys)
    {
        int n = row.Length, j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var top = Vector256.Create(0x80000000u);
            for (; j + 8 <= n; j += 8)
            {
                var v = Vector256.Create(row.Slice(j, 8));
                if (!Vector256.EqualsAll(v, v)) return false;
                var bits = (v + Vector256<float>.Zero).AsUInt32();
                var negative = Vector256.ShiftRightArithmetic(bits.AsInt32(), 31).AsUInt32();
                (bits ^ (negative | top)).CopyTo(keys, j);
            }
        }
        for (; j < n; j++)
        {
            float x = row[j];
            if (float.IsNaN(x)) return false;
            uint bits = BitConverter.SingleToUInt32Bits(x + 0f);
            keys[j] = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
        }
        return true;
    }

    static T[] Buffer<T>(ref T[]? buffer, int size) => buffer is { } b && b.Length >= size ? b : buffer = new T[Math.Max(size, 1)];

    static bool HasNaN(ReadOnlySpan<float> row)
    {
        foreach (var x in row) if (float.IsNaN(x)) return true;
        return false;
    }
}
