using Superficial.Evaluation.Stats;

namespace Superficial.Analysis;

/// <summary>
/// Percentile bootstrap of a ratio of sums over clusters (here: responses): each resample draws clusters
/// with replacement and recomputes Σ numerator / Σ denominator, so the correlation of positions within one
/// response widens the interval as it should. Deterministic in the seed.
/// </summary>
public static class ClusterBootstrap
{
    public static Interval RatioOfSums(IReadOnlyList<double> numerators, IReadOnlyList<double> denominators, int resamples, int seed,
        Func<double, double, double>? ratio = null)
    {
        if (numerators.Count != denominators.Count) throw new ArgumentException("one numerator and one denominator per cluster.");
        ratio ??= (a, b) => a / b;
        int n = numerators.Count;
        if (n == 0) return new Interval(double.NaN, double.NaN);
        var rng = new Random(seed);
        var reps = new List<double>(resamples);
        for (int r = 0; r < resamples; r++)
        {
            double a = 0, b = 0;
            for (int k = 0; k < n; k++) { int i = rng.Next(n); a += numerators[i]; b += denominators[i]; }
            if (b == 0) continue;
            var x = ratio(a, b);
            if (double.IsFinite(x)) reps.Add(x);
        }
        return reps.Count == 0 ? new Interval(double.NaN, double.NaN) : Percentile.Interval(reps);
    }
}
