namespace Superficial.Analysis;

/// <summary>
/// What one extracted response contributes, per position bucket: positions, token-shift categories under
/// the base model and under base + head, and summed KL. Intervals resample whole responses (positions of
/// one response are not independent), so these per-response tallies are what the bootstrap draws.
/// </summary>
public sealed class SequenceTally(int sequence)
{
    public int Sequence { get; } = sequence;
    public long[] Positions { get; } = new long[PositionBuckets.Count];
    /// <summary>[bucket * 3 + category]: counts under the base model.</summary>
    public long[] Base { get; } = new long[PositionBuckets.Count * TokenShift.Categories];
    /// <summary>[bucket * 3 + category]: counts under base + head.</summary>
    public long[] Head { get; } = new long[PositionBuckets.Count * TokenShift.Categories];
    public double[] KlBase { get; } = new double[PositionBuckets.Count];
    public double[] KlHead { get; } = new double[PositionBuckets.Count];

    public void Add(int position, int baseRank, int headRank, double klBase, double klHead)
    {
        int b = PositionBuckets.Of(position);
        Positions[b]++;
        Base[b * TokenShift.Categories + (int)TokenShift.Classify(baseRank)]++;
        Head[b * TokenShift.Categories + (int)TokenShift.Classify(headRank)]++;
        KlBase[b] += klBase;
        KlHead[b] += klHead;
    }
}
