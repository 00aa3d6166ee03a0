using ScottPlot;
using Superficial.Evaluation.Report;

namespace Superficial.Analysis;

/// <summary>One line of a chart, with an optional 95% band drawn as whiskers.</summary>
public sealed record LineSeries(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y,
    IReadOnlyList<double>? Low = null, IReadOnlyList<double>? High = null);

/// <summary>The analysis report's charts (ScottPlot, PNG bytes), in the evaluation report's colours.</summary>
public static class AnalysisCharts
{
    // as the evaluation report: a Linux sans face with the arrows and minus signs used in labels
    static readonly string FontName =
        new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" }.FirstOrDefault(f => Fonts.GetTypeface(f, false, false)?.FamilyName == f) ?? Fonts.Default;

    /// <summary>Lines with markers (and whiskers where given); <paramref name="logY"/> plots log10 of y (for spectra and KL).</summary>
    public static byte[] Lines(string title, string xLabel, string yLabel, IReadOnlyList<LineSeries> series, bool logY = false,
        IReadOnlyList<(double X, string Label)>? xTicks = null, int width = 900, int height = 400)
    {
        var plot = new Plot();
        plot.Font.Set(FontName);
        plot.Title(title, 16);
        for (int k = 0; k < series.Count; k++)
        {
            var s = series[k];
            var pts = Enumerable.Range(0, s.X.Count).Where(i => double.IsFinite(s.Y[i]) && (!logY || s.Y[i] > 0)).ToArray();
            if (pts.Length == 0) continue;
            double T(double y) => logY ? Math.Log10(Math.Max(y, 1e-12)) : y;
            var xs = pts.Select(i => s.X[i]).ToArray();
            var ys = pts.Select(i => T(s.Y[i])).ToArray();
            var line = plot.Add.Scatter(xs, ys, ReportCharts.SeriesColor(k + 1));
            line.LineWidth = 2;
            line.MarkerSize = 6;
            line.LegendText = s.Label;
            if (s.Low is not null && s.High is not null)
            {
                var neg = pts.Select(i => Math.Abs(T(s.Y[i]) - T(double.IsFinite(s.Low[i]) ? s.Low[i] : s.Y[i]))).ToArray();
                var pos = pts.Select(i => Math.Abs(T(double.IsFinite(s.High[i]) ? s.High[i] : s.Y[i]) - T(s.Y[i]))).ToArray();
                var zeros = new double[xs.Length];
                plot.Add.Plottable(new ScottPlot.Plottables.ErrorBar(xs, ys, zeros, zeros, neg, pos)
                    { Color = ReportCharts.SeriesColor(k + 1), LineWidth = 1.2f, CapSize = 4 });
            }
        }
        if (xTicks is not null) plot.Axes.Bottom.SetTicks(xTicks.Select(t => t.X).ToArray(), xTicks.Select(t => t.Label).ToArray());
        plot.XLabel(xLabel);
        plot.YLabel(logY ? $"log10 {yLabel}" : yLabel);
        plot.ShowLegend(Edge.Bottom);
        plot.Legend.Orientation = Orientation.Horizontal;
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
