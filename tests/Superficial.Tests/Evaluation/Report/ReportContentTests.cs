using Superficial.Evaluation.Report;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Stats;

namespace Superficial.Tests.Evaluation.Report;

/// <summary>What the report says and draws, decided from a summary (no models): takeaway, order, scales, costs.</summary>
public class ReportContentTests
{
    static VariantResult V(string name, double mean, double lo, double hi) => new(name, 40, mean, new Interval(lo, hi));

    static ComparisonTaskResult Row(string task, string metric, bool hib, double b, double h, double a, PortionEstimate p) =>
        new(task, metric, hib, 40, V("base", b, b - 0.05, b + 0.05), V("base+head", h, h - 0.05, h + 0.05), V("aligned", a, a - 0.05, a + 0.05), p);

    static EvalSummary Summary()
    {
        var rows = new[]
        {
            Row("safety", "attack_success_rate", false, 0.9, 0.2, 0.1, new PortionEstimate(0.875, new(0.7, 0.98), "ok")),
            Row("math", "accuracy", true, 0.3, 0.32, 0.6, new PortionEstimate(0.067, new(-0.1, 0.25), "ok")),
            Row("helpfulness", "helpful_rate", true, 0.7, 0.7, 0.9, new PortionEstimate(0.0, new(-1.5, 0.63), "ok")),
            Row("benign-nll", "nll_per_char", false, 2.6, 3.4, 2.9, new PortionEstimate(2.67, new(1.5, 8.7), "ok")),
        };
        var main = new ComparisonResults(Comparison.Superficial, ("base", "base+head", "aligned"), null, null, rows);
        // per-task variants arrive in file order (here alphabetical), not in the order a reader wants
        var variants = new[] { "aligned", "base", "base+head", "base+head@a=2", "base+head@a=0.5" };
        var tasks = rows.Select(r => new TaskResults(r.Task, r.Metric, r.HigherIsBetter, 40,
            variants.Select(v => V(v, 0.5, 0.4, 0.6)).ToArray(), [], [])).ToArray();
        return new EvalSummary { Main = main, Tasks = tasks, BootstrapResamples = 1000 };
    }

    static IReadOnlyList<ReportBlock> Build()
    {
        using var tmp = TestPaths.NewTempDir("report-content");
        return new ReportBuilder(Summary(), tmp.Path, new ReportOptions(ExamplesPerTask: 0)).Build();
    }

    [Fact]
    public void The_report_opens_with_a_takeaway_written_from_the_numbers()
    {
        var blocks = Build();
        var takeaway = blocks.OfType<Paragraph>().First().Text;
        Assert.StartsWith("Takeaway", takeaway);
        Assert.Contains("safety", takeaway);
        Assert.Contains("0.88 [0.70, 0.98]", takeaway);
        Assert.Matches("safety[^;]*largely superficial", takeaway);
        Assert.Matches("math[^;]*not superficial", takeaway);
        Assert.Matches("helpfulness[^;]*too uncertain to say", takeaway);
        Assert.Contains("benign-nll", takeaway);
        Assert.DoesNotContain("2.67", takeaway); // a cost, not a share
    }

    [Fact]
    public void Variants_are_listed_low_to_high_with_alphas_in_order()
    {
        var intro = Build().OfType<Paragraph>().First(p => p.Text.Contains("Variants:")).Text;
        Assert.Contains("Variants: base, base+head@a=0.5, base+head, base+head@a=2, aligned.", intro);
    }

    [Fact]
    public void Metrics_of_another_scale_get_their_own_panel_and_costs_stay_off_the_portion_axis()
    {
        var blocks = Build();
        var figures = blocks.OfType<Figure>().Select(f => f.Alt).ToArray();
        Assert.Contains(figures, a => a.Contains("safety") && a.Contains("math") && !a.Contains("benign-nll"));
        Assert.Contains(figures, a => a.Contains("benign-nll") && !a.Contains("safety"));
        var portionTable = blocks.OfType<Table>().First(t => t.Header.SequenceEqual(["task", "portion", "why / what it rests on"]));
        var nll = portionTable.Rows.Single(r => r[0] == "benign-nll");
        Assert.DoesNotContain("2.67", nll[1]);
        Assert.Contains("cost", nll[1]);
        Assert.Contains("+0.500", nll[1]); // base+head 3.4 vs aligned 2.9
    }
}
