using Superficial.Evaluation.Stats;

namespace Superficial.Tests.Evaluation.Stats;

public class BootstrapTests
{
    static IReadOnlyList<double> Bernoulli(int n, int ones) => Enumerable.Range(0, n).Select(i => i < ones ? 1.0 : 0.0).ToArray();

    [Fact]
    public void Quantiles_match_the_type_7_definition()
    {
        double[] sorted = [1, 2, 3, 4];
        Assert.Equal(1.75, Percentile.OfSorted(sorted, 0.25), 12);   // numpy.quantile([1,2,3,4], 0.25)
        Assert.Equal(3.925, Percentile.OfSorted(sorted, 0.975), 12);
        var i = Percentile.Interval([4, 1, 3, 2]);
        Assert.Equal(1.075, i.Low, 12);
        Assert.Equal(3.925, i.High, 12);
    }

    [Fact]
    public void Interval_of_a_Bernoulli_mean_matches_the_normal_approximation_for_large_n()
    {
        const int n = 2000, ones = 600;
        var mean = PairedBootstrap.Means([Bernoulli(n, ones)], 4000, seed: 3)[0];
        var p = ones / (double)n;
        var half = 1.959964 * Math.Sqrt(p * (1 - p) / n); // 0.0201
        Assert.Equal(p, mean.Mean, 12);
        Assert.Equal(p - half, mean.Ci95.Low, 0.0015);
        Assert.Equal(p + half, mean.Ci95.High, 0.0015);
    }

    [Fact]
    public void Replicates_have_the_exact_bootstrap_mean_and_variance()
    {
        double[] x = [0.0, 0.25, 1.0, 1.0, 0.5];
        const int r = 20000;
        var m = PairedBootstrap.Means([x], r, seed: 11)[0];
        var xbar = x.Average();
        // Resampling n values with replacement: E[mean*] = x̄ and Var[mean*] = (1/n) · (1/n) Σ (x − x̄)².
        var exactVar = x.Sum(v => (v - xbar) * (v - xbar)) / x.Length / x.Length;
        var reps = m.Replicates;
        var repMean = reps.Average();
        var repVar = reps.Sum(v => (v - repMean) * (v - repMean)) / (r - 1);
        Assert.Equal(xbar, repMean, 0.003);
        Assert.InRange(repVar / exactVar, 0.95, 1.05);
    }

    [Fact]
    public void Resamples_are_shared_by_all_series_and_reproducible()
    {
        var a = Enumerable.Range(0, 30).Select(i => (double)(i % 7)).ToArray();
        var b = a.Select(v => v + 0.5).ToArray(); // b = a + 0.5 on every example
        var means = PairedBootstrap.Means([a, b], 300, seed: 5);
        for (var i = 0; i < 300; i++) Assert.Equal(means[0].Replicates[i] + 0.5, means[1].Replicates[i], 12);
        Assert.True(means[0].Ci95.Width > 0.5); // each mean alone is uncertain...
        Assert.Equal(means[0].Replicates, PairedBootstrap.Means([a, b], 300, seed: 5)[0].Replicates);
        Assert.NotEqual(means[0].Replicates, PairedBootstrap.Means([a, b], 300, seed: 6)[0].Replicates);
    }

    [Fact]
    public void Unequal_or_empty_series_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Means([[1.0, 0.0], [1.0]], 10, 0));
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Means([Array.Empty<double>()], 10, 0));
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Means([[double.NaN]], 10, 0));
    }

    [Fact]
    public void Task_seeds_are_stable_and_distinct()
    {
        Assert.Equal(PairedBootstrap.SeedFor(1, "gsm"), PairedBootstrap.SeedFor(1, "gsm"));
        Assert.NotEqual(PairedBootstrap.SeedFor(1, "gsm"), PairedBootstrap.SeedFor(1, "advbench"));
        Assert.NotEqual(PairedBootstrap.SeedFor(1, "gsm"), PairedBootstrap.SeedFor(2, "gsm"));
    }
}
