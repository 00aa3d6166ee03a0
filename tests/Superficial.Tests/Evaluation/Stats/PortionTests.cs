using Superficial.Evaluation.Stats;

namespace Superficial.Tests.Evaluation.Stats;

public class PortionTests
{
    static PortionEstimate Portion(IReadOnlyList<double> low, IReadOnlyList<double> mid, IReadOnlyList<double> high, int r = 2000, int seed = 1)
    {
        var m = PairedBootstrap.Means([low, mid, high], r, seed);
        return SuperficialPortion.Estimate(m[0], m[1], m[2]);
    }

    static double BinomialCdf(int n, double p, int k)
    {
        double sum = 0, term = Math.Pow(1 - p, n);
        for (var j = 0; j <= k; j++)
        {
            sum += term;
            term *= (double)(n - j) / (j + 1) * p / (1 - p);
        }
        return sum;
    }

    [Fact]
    public void Interval_matches_the_exact_bootstrap_distribution_on_a_constructed_case()
    {
        // low = 0 and high = 1 on every example, so each resample's portion is mid's resampled mean,
        // which is Binomial(n, k/n) / n exactly: its 2.5% and 97.5% quantiles are known.
        const int n = 26, k = 13;
        var mid = Enumerable.Range(0, n).Select(i => i < k ? 1.0 : 0.0).ToArray();
        var est = Portion(new double[n], mid, Enumerable.Repeat(1.0, n).ToArray(), r: 20000);
        int Quantile(double q) => Enumerable.Range(0, n + 1).First(j => BinomialCdf(n, k / (double)n, j) >= q);
        Assert.Equal(0.5, est.Value!.Value, 12);
        Assert.Equal(Quantile(0.025) / (double)n, est.Ci95!.Value.Low, 12);  // 8/26
        Assert.Equal(Quantile(0.975) / (double)n, est.Ci95!.Value.High, 12); // 18/26
    }

    [Fact]
    public void Pairing_makes_a_mid_halfway_on_every_example_exactly_one_half()
    {
        var rng = new Random(4);
        var low = Enumerable.Range(0, 80).Select(_ => rng.NextDouble() * 0.3).ToArray();
        var high = low.Select(v => v + 0.4 + rng.NextDouble() * 0.3).ToArray();
        var mid = low.Zip(high, (l, h) => (l + h) / 2).ToArray();
        var est = Portion(low, mid, high);
        Assert.Equal(0.5, est.Value!.Value, 12);
        Assert.Equal(0.5, est.Ci95!.Value.Low, 12);
        Assert.Equal(0.5, est.Ci95!.Value.High, 12);
    }

    [Fact]
    public void The_portion_does_not_depend_on_the_metric_direction()
    {
        var rng = new Random(9);
        double[] Draw(double p) => Enumerable.Range(0, 300).Select(_ => rng.NextDouble() < p ? 1.0 : 0.0).ToArray();
        var (low, mid, high) = (Draw(0.8), Draw(0.5), Draw(0.1));
        static double[] Flip(double[] x) => x.Select(v => 1 - v).ToArray();
        var a = Portion(low, mid, high);
        var b = Portion(Flip(low), Flip(mid), Flip(high));
        var exact = (mid.Average() - low.Average()) / (high.Average() - low.Average());
        Assert.Equal(exact, a.Value!.Value, 12);
        Assert.Equal(a.Value!.Value, b.Value!.Value, 12);
        Assert.Equal(a.Ci95!.Value.Low, b.Ci95!.Value.Low, 9);
        Assert.Equal(a.Ci95!.Value.High, b.Ci95!.Value.High, 9);
        Assert.True(a.Ci95!.Value.Contains(exact));
    }

    [Fact]
    public void Equal_high_and_low_give_no_portion()
    {
        var x = Enumerable.Range(0, 50).Select(i => i % 4 == 0 ? 1.0 : 0.0).ToArray();
        var est = Portion(x, x.Select(v => 1 - v).ToArray(), x);
        Assert.Null(est.Value);
        Assert.Null(est.Ci95);
        Assert.Contains("equal", est.Note);
    }

    [Fact]
    public void Indistinguishable_high_and_low_give_no_portion()
    {
        // high differs from low on one example of 200: high − low = 0.005, but the interval reaches 0.
        var low = Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? 1.0 : 0.0).ToArray();
        var high = low.ToArray();
        high[1] = 1;
        var est = Portion(low, low, high);
        Assert.Null(est.Value);
        Assert.Contains("not distinguishable", est.Note);
        Assert.Contains("contains 0", est.Note);
    }

    [Fact]
    public void Resamples_that_reverse_high_and_low_are_left_out_of_the_interval_and_counted()
    {
        // high beats low on 25 examples and loses on 12 (n = 400): high − low = 13/400, distinguishable,
        // yet a few percent of resamples tie or reverse the order; those cannot give a meaningful ratio.
        var low = Enumerable.Range(0, 400).Select(i => (double)(i % 2)).ToArray();
        var high = low.ToArray();
        for (var k = 0; k < 25; k++) high[2 * k] = 1;        // low 0 → high 1
        for (var k = 0; k < 12; k++) high[2 * k + 101] = 0;  // low 1 → high 0
        var mid = low.Select((v, i) => i < 50 ? high[i] : v).ToArray();
        var est = Portion(low, mid, high);
        var m = System.Text.RegularExpressions.Regex.Match(est.Note, @"(\d+) of 2000 resamples");
        Assert.True(m.Success, est.Note);
        Assert.InRange(int.Parse(m.Groups[1].Value), 1, 50); // at most 2.5% when the interval of high − low excludes 0
        Assert.Equal((mid.Average() - low.Average()) / (13 / 400.0), est.Value!.Value, 12);
    }
}
