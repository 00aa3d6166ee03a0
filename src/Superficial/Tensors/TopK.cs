using System.Runtime.Intrinsics;

namespace Superficial.Tensors;

/// <summary>
/// The k largest of one row of F32 logits, sorted: largest first, equal values by the lower index first, so entry 0
/// is the token greedy decoding picks (argmax's first maximum). The values are the row's own, so they equal
/// libtorch's topk bit for bit; only the order of equal values is fixed here where libtorch leaves it open.
/// <para>
/// How: the first k entries form a min-heap; the rest of the row is scanned 8 at a time against the heap's
/// smallest value and only entries above it are inserted (after the first few thousand, almost none), and the heap
/// is sorted in place at the end. For a 32000-entry row and k = 500 it takes a fraction of libtorch's topk, and it
/// allocates nothing: the heap lives in the caller's buffers. A row holding a NaN is refused (false) and left to
/// libtorch, which ranks NaN above every number.
/// </para>
/// </summary>
public static class TopK
{
    /// <summary>Writes the top <c>values.Length</c> of <paramref name="row"/> into values and ids; false if the row holds a NaN.</summary>
    public static bool Row(ReadOnlySpan<float> row, Span<float> values, Span<int> ids)
    {
        int k = values.Length, n = row.Length;
        if (k == 0) return !HasNaN(row);
        if (k > n || ids.Length != k) throw new ArgumentException($"top-{k} of a row of {n} into {ids.Length} ids");
        for (int i = 0; i < k; i++)
        {
            if (float.IsNaN(row[i])) return false;
            values[i] = row[i];
            ids[i] = i;
        }
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(values, ids, i, k);
        int j = k;
        float min = values[0];
        if (Vector256.IsHardwareAccelerated)
        {
            for (; j + 8 <= n; j += 8)
            {
                var v = Vector256.Create(row.Slice(j, 8));
                if (!Vector256.EqualsAll(v, v)) return false;
                if (!Vector256.GreaterThanAny(v, Vector256.Create(min))) continue;
                for (int t = j; t < j + 8; t++)
                    if (row[t] > min) { values[0] = row[t]; ids[0] = t; SiftDown(values, ids, 0, k); min = values[0]; }
            }
        }
        for (; j < n; j++)
        {
            float x = row[j];
            if (float.IsNaN(x)) return false;
            // an equal value has a higher index than everything in the heap, so it ranks below the smallest: skip it
            if (x > min) { values[0] = x; ids[0] = j; SiftDown(values, ids, 0, k); min = values[0]; }
        }
        // heap sort: the smallest goes to the end each time, leaving the largest first
        for (int end = k - 1; end > 0; end--)
        {
            (values[0], values[end]) = (values[end], values[0]);
            (ids[0], ids[end]) = (ids[end], ids[0]);
            SiftDown(values, ids, 0, end);
        }
        return true;
    }

    static bool HasNaN(ReadOnlySpan<float> row)
    {
        foreach (var x in row) if (float.IsNaN(x)) return true;
        return false;
    }

    /// <summary>a ranks below b: a smaller value, or the same value at a higher index.</summary>
    static bool Below(float va, int ia, float vb, int ib) => va < vb || (va == vb && ia > ib);

    /// <summary>Restores the min-heap (lowest rank at the root) below <paramref name="i"/> within the first <paramref name="size"/> entries.</summary>
    static void SiftDown(Span<float> values, Span<int> ids, int i, int size)
    {
        float v = values[i];
        int id = ids[i];
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= size) break;
            if (c + 1 < size && Below(values[c + 1], ids[c + 1], values[c], ids[c])) c++;
            if (!Below(values[c], ids[c], v, id)) break;
            values[i] = values[c];
            ids[i] = ids[c];
            i = c;
        }
        values[i] = v;
        ids[i] = id;
    }
}
