namespace Superficial.Evaluation.Stats;

/// <summary>A mean over examples with its bootstrap replicates (the means over resampled examples).</summary>
public sealed class BootstrapMean
{
    internal BootstrapMean(double mean, int n, double[] replicates) { Mean = mean; N = n; Replicates = replicates; }

    public double Mean { get; }
    public int N { get; }
    /// <summary>One mean per resample. Means from one <see cref="PairedBootstrap.Means"/> call share resample
    /// indices, so their element-wise differences are replicates of the paired difference.</summary>
    public IReadOnlyList<double> Replicates { get; }
    /// <summary>The 95% percentile interval of the mean.</summary>
    public Interval Ci95 => Percentile.Interval(Replicates);
}

/// <summary>
/// Paired nonparametric bootstrap over examples: every variant was scored on the same examples, so each
/// resample draws one set of example indices (n draws with replacement) and applies it to all series.
/// Differences and ratios between variants then keep the correlation between them, which makes their
/// intervals much narrower than independent resampling would when variants agree on most examples.
/// </summary>
public static class PairedBootstrap
{
    public const int DefaultResamples = 2000;

    /// <summary>Bootstrap means of several score series over the same examples (series[v][i] = score of example i).</summary>
    public static IReadOnlyList<BootstrapMean> Means(IReadOnlyList<IReadOnlyList<double>> series, int resamples, int seed)
    {
        if (series.Count == 0) throw new ArgumentException("No series to bootstrap.", nameof(series));
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), resamples, "Need at least one resample.");
        var n = series[0].Count;
        if (n == 0) throw new ArgumentException("Cannot bootstrap a mean over zero examples.", nameof(series));
        for (var v = 0; v < series.Count; v++)
        {
            if (series[v].Count != n)
                throw new ArgumentException($"Paired series must have equal length: series 0 has {n} examples, series {v} has {series[v].Count}.", nameof(series));
            if (series[v].Any(x => !double.IsFinite(x)))
                throw new ArgumentException($"Series {v} holds a non-finite score.", nameof(series));
        }

        var scores = series.Select(s => s.ToArray()).ToArray();
        var replicates = new double[scores.Length][];
        for (var v = 0; v < scores.Length; v++) replicates[v] = new double[resamples];
        // A seeded System.Random uses the same algorithm on every .NET version, so results are reproducible.
        var rng = new Random(seed);
        var sums = new double[scores.Length];
        for (var r = 0; r < resamples; r++)
        {
            Array.Clear(sums);
            for (var k = 0; k < n; k++)
            {
                var i = rng.Next(n);
                for (var v = 0; v < scores.Length; v++) sums[v] += scores[v][i];
            }
            for (var v = 0; v < scores.Length; v++) replicates[v][r] = sums[v] / n;
        }
        return scores.Select((s, v) => new BootstrapMean(s.Average(), n, replicates[v])).ToArray();
    }

    /// <summary>A seed for one task derived from the run seed and the task name (FNV-1a), stable across processes,
    /// so adding or removing a task does not change another task's intervals.</summary>
    public static int SeedFor(int runSeed, string taskName)
    {
        var h = 2166136261u;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(taskName)) { h ^= b; h *= 16777619u; }
        return unchecked((int)(h ^ (uint)runSeed * 2654435761u));
    }
}
