using ScottPlot.Plottables;
using Superficial.Evaluation.Report;
using Superficial.Evaluation.Stats;

namespace Superficial.Tests.Evaluation.Report;

/// <summary>What the charts draw, read back from the plot (not only that a PNG comes out).</summary>
public class ReportChartTests
{
    // Every whisker the plot holds, as the [bottom, top] it draws at each point.
    static List<(double X, double Bottom, double Top)> Whiskers(ScottPlot.Plot plot) =>
        plot.GetPlottables().OfType<ErrorBar>().SelectMany(e => e.Xs.Select((x, i) =>
            (x, e.Ys[i] - (e.YErrorNegative?[i] ?? 0), e.Ys[i] + (e.YErrorPositive?[i] ?? 0)))).ToList();

    [Fact]
    public void Bar_whiskers_span_each_asymmetric_interval()
    {
        // The example: toxicity 0.833 [0.583, 1.000] was drawn from 0.67 to 1.08.
        var plot = ReportCharts.GroupedBarsPlot("t", ["toxicity"], ["base", "head"],
            [[new BarValue(0.833, new(0.583, 1.0)), new BarValue(0.17, new(0.0, 0.42))]]);
        var w = Whiskers(plot).OrderBy(x => x.X).ToList();
        Assert.Equal(2, w.Count);
        Assert.Equal(0.583, w[0].Bottom, 9);
        Assert.Equal(1.000, w[0].Top, 9);
        Assert.Equal(0.0, w[1].Bottom, 9);
        Assert.Equal(0.42, w[1].Top, 9);
    }

    [Fact]
    public void Portion_whiskers_span_each_asymmetric_interval()
    {
        var plot = ReportCharts.PortionsPlot("t", ["a", "b"],
            [new PortionEstimate(0.17, new(0.0, 0.42), ""), new PortionEstimate(0.9, new(0.2, 1.0), "")]);
        var w = Whiskers(plot).OrderBy(x => x.X).ToList();
        Assert.Equal([(0.0, 0.0, 0.42), (1.0, 0.2, 1.0)], w.Select(x => (x.X, Math.Round(x.Bottom, 9), Math.Round(x.Top, 9))));
    }

    [Fact]
    public void Reference_lines_can_be_told_apart_in_the_legend()
    {
        var plot = ReportCharts.PortionsPlot("t", ["a"], [new PortionEstimate(0.5, new(0.2, 0.8), "")]);
        var lines = plot.GetPlottables().OfType<HorizontalLine>().Select(l => (l.LineColor, l.LinePattern, l.LegendText)).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.NotEqual(lines[0].LineColor, lines[1].LineColor);
        Assert.NotEqual(lines[0].LinePattern, lines[1].LinePattern);
    }
}
