namespace Superficial.Evaluation.Stats;

/// <summary>Quantiles of bootstrap replicates and the percentile interval built from them.</summary>
public static class Percentile
{
    /// <summary>
    /// The q-quantile of values already sorted ascending, by linear interpolation between order statistics
    /// (Hyndman and Fan type 7: numpy's and R's default), so results can be checked against those tools.
    /// </summary>
    public static double OfSorted(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) throw new ArgumentException("No values to take a quantile of.", nameof(sorted));
        if (q is < 0 or > 1 || double.IsNaN(q)) throw new ArgumentOutOfRangeException(nameof(q), q, "Quantile must be in [0, 1].");
        var h = (sorted.Count - 1) * q;
        var lo = (int)Math.Floor(h);
        var hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>The central percentile interval holding <paramref name="level"/> of the replicates (0.95: 2.5% to 97.5%).</summary>
    public static Interval Interval(IEnumerable<double> replicates, double level = 0.95)
    {
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "Level must be in (0, 1).");
        var sorted = replicates.ToArray();
        if (sorted.Any(double.IsNaN)) throw new ArgumentException("Replicates contain NaN.", nameof(replicates));
        Array.Sort(sorted);
        var tail = (1 - level) / 2;
        return new Interval(OfSorted(sorted, tail), OfSorted(sorted, 1 - tail));
    }
}
