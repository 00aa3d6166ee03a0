namespace Superficial.Analysis;

/// <summary>Mean, count and 95% normal interval of one quantity at one position index.</summary>
public readonly record struct PositionMean(int Position, long N, double Mean, double Low, double High);

/// <summary>
/// Running sums of per-position KL(aligned || base) and KL(aligned || base + head) by position index in
/// the response (0 .. MaxDepth - 1, then one slot for everything deeper). Each response contributes at most
/// one value per index, so values at an index are independent across responses and a normal interval of
/// the mean (mean ± 1.96 sd / √n) applies. Memory is fixed by MaxDepth, not by the number of positions.
/// </summary>
public sealed class DepthProfile(int maxDepth)
{
    public int MaxDepth { get; } = maxDepth;
    readonly long[] n = new long[maxDepth + 1];
    readonly double[] sumBase = new double[maxDepth + 1], sqBase = new double[maxDepth + 1];
    readonly double[] sumHead = new double[maxDepth + 1], sqHead = new double[maxDepth + 1];

    public void Add(int position, double klBase, double klHead)
    {
        int i = Math.Min(position, MaxDepth);
        n[i]++;
        sumBase[i] += klBase; sqBase[i] += klBase * klBase;
        sumHead[i] += klHead; sqHead[i] += klHead * klHead;
    }

    /// <summary>Slots with at least one value; slot MaxDepth stands for "MaxDepth and deeper".</summary>
    public IEnumerable<int> Slots => Enumerable.Range(0, MaxDepth + 1).Where(i => n[i] > 0);

    public PositionMean Base(int slot) => Mean(slot, sumBase, sqBase);
    public PositionMean Head(int slot) => Mean(slot, sumHead, sqHead);

    /// <summary>Fraction of the mean KL gap the head closes at this slot: 1 − KL(aligned‖base+head) / KL(aligned‖base).</summary>
    public double GapClosed(int slot) => sumBase[slot] <= 0 ? double.NaN : 1 - sumHead[slot] / sumBase[slot];

    PositionMean Mean(int slot, double[] sum, double[] sq)
    {
        long k = n[slot];
        double mean = sum[slot] / k;
        double var = k > 1 ? Math.Max(0, (sq[slot] - k * mean * mean) / (k - 1)) : 0;
        double half = k > 1 ? 1.96 * Math.Sqrt(var / k) : 0;
        return new PositionMean(slot, k, mean, mean - half, mean + half);
    }
}
