using Superficial.Evaluation.Stats;

namespace Superficial.Analysis;

/// <summary>
/// A quantity measured with several heads (training runs differing in seed) on the same prompts, with
/// its two sources of uncertainty kept apart. <paramref name="PromptSd"/>/<paramref name="PromptCi95"/>: the
/// prompt-sampling part, from the paired bootstrap over prompts of the mean over heads (heads held fixed).
/// <paramref name="HeadSd"/>: the sample standard deviation across heads (one training run to the next).
/// <paramref name="CombinedCi95"/>: a two-level bootstrap of the mean over heads: each replicate resamples the
/// heads (outer level) and takes every drawn head's value on the same prompt resample (inner level), so its
/// variance is, by the law of total variance, the prompt part plus the head part (HeadSd²·(m−1)/m² for m
/// heads); <paramref name="CombinedSd"/> is its standard deviation.
/// </summary>
public sealed record SpreadEstimate(double Mean, int Heads, IReadOnlyList<double> PerHead, double PromptSd, Interval PromptCi95,
    double HeadSd, double CombinedSd, Interval CombinedCi95, int Replicates);

/// <summary>Combines bootstrap-over-prompts replicates of several heads into a <see cref="SpreadEstimate"/>.</summary>
public static class HeadSpread
{
    /// <param name="pointPerHead">The estimate with each head (on all prompts).</param>
    /// <param name="replicatesPerHead">[head][r]: the estimate on prompt resample r; resample r must draw the same
    /// prompts for every head (one paired bootstrap). Replicates that are NaN for any head are left out.</param>
    public static SpreadEstimate Combine(IReadOnlyList<double> pointPerHead, IReadOnlyList<IReadOnlyList<double>> replicatesPerHead, int seed)
    {
        int m = pointPerHead.Count;
        if (m == 0 || replicatesPerHead.Count != m) throw new ArgumentException("one replicate series per head, and at least one head.");
        int reps = replicatesPerHead[0].Count;
        if (replicatesPerHead.Any(r => r.Count != reps)) throw new ArgumentException("every head needs the same number of replicates (one paired bootstrap).");
        var valid = Enumerable.Range(0, reps).Where(r => replicatesPerHead.All(h => double.IsFinite(h[r]))).ToArray();
        if (valid.Length < 2) throw new ArgumentException("fewer than two usable bootstrap replicates.");
        double mean = pointPerHead.Average();
        double headSd = m > 1 ? Math.Sqrt(pointPerHead.Sum(x => (x - mean) * (x - mean)) / (m - 1)) : 0;

        var promptReps = valid.Select(r => replicatesPerHead.Average(h => h[r])).ToArray();
        var rng = new Random(seed);
        var combined = new double[valid.Length];
        for (int k = 0; k < valid.Length; k++)
        {
            int r = valid[k];
            double sum = 0;
            for (int j = 0; j < m; j++) sum += replicatesPerHead[rng.Next(m)][r];
            combined[k] = sum / m;
        }
        return new SpreadEstimate(mean, m, pointPerHead.ToArray(), Sd(promptReps), Percentile.Interval(promptReps),
            headSd, Sd(combined), Percentile.Interval(combined), valid.Length);
    }

    static double Sd(IReadOnlyList<double> x)
    {
        double mu = x.Average();
        return Math.Sqrt(x.Sum(v => (v - mu) * (v - mu)) / (x.Count - 1));
    }
}
