using ScottPlot;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Report;

/// <summary>One bar of a grouped chart: a variant's metric on a task, with its 95% interval.</summary>
public sealed record BarValue(double Mean, Interval Ci95);

/// <summary>The report's charts, drawn with ScottPlot and returned as PNG bytes.</summary>
public static class ReportCharts
{
    // Low / mid / high, then further series; colour-blind-safe (Okabe-Ito).
    static readonly Color[] Palette =
        [Color.FromHex("#8c8c8c"), Color.FromHex("#E69F00"), Color.FromHex("#0072B2"), Color.FromHex("#009E73"),
         Color.FromHex("#CC79A7"), Color.FromHex("#D55E00"), Color.FromHex("#56B4E9"), Color.FromHex("#F0E442")];

    public static Color SeriesColor(int i) => Palette[i % Palette.Length];

    /// <summary>Grouped bars: one group per task (label under it), one bar per series, with 95% interval whiskers.</summary>
    public static byte[] GroupedBars(string title, IReadOnlyList<string> groupLabels, IReadOnlyList<string> seriesLabels,
        IReadOnlyList<IReadOnlyList<BarValue>> values, int width = 900, int height = 430) =>
        GroupedBarsPlot(title, groupLabels, seriesLabels, values).GetImageBytes(width, height, ImageFormat.Png);

    internal static Plot GroupedBarsPlot(string title, IReadOnlyList<string> groupLabels, IReadOnlyList<string> seriesLabels,
        IReadOnlyList<IReadOnlyList<BarValue>> values)
    {
        var plot = NewPlot(title);
        var s = seriesLabels.Count;
        var xs = new List<double>(); var ys = new List<double>(); var neg = new List<double>(); var pos = new List<double>();
        for (var k = 0; k < s; k++)
        {
            var bars = new List<Bar>();
            for (var g = 0; g < groupLabels.Count; g++)
            {
                var v = values[g][k];
                var x = g * (s + 1) + k;
                bars.Add(new Bar { Position = x, Value = v.Mean, FillColor = SeriesColor(k), LineWidth = 0, Size = 0.9 });
                xs.Add(x); ys.Add(v.Mean); neg.Add(v.Mean - v.Ci95.Low); pos.Add(v.Ci95.High - v.Mean);
            }
            var bp = plot.Add.Bars(bars);
            bp.LegendText = seriesLabels[k];
        }
        AddWhiskers(plot, xs, ys, neg, pos, Colors.Black);
        plot.Axes.Bottom.SetTicks(groupLabels.Select((_, g) => g * (s + 1) + (s - 1) / 2.0).ToArray(), groupLabels.ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        var lo = Math.Min(0, values.SelectMany(r => r).Min(v => v.Ci95.Low));
        var hi = Math.Max(values.SelectMany(r => r).Max(v => v.Ci95.High), lo + 1e-6);
        plot.Axes.SetLimits(-0.8, groupLabels.Count * (s + 1) - 1.2, lo, hi + (hi - lo) * 0.18);
        plot.YLabel("metric (mean over examples)");
        LegendBelow(plot);
        return plot;
    }

    /// <summary>
    /// The portion per task with its 95% interval; reference lines at 0 (= low) and 1 (= high). Tasks whose
    /// portion is undefined get a grey cross at 0 labelled "undefined" and the short reason (the full one is in the table beside it).
    /// </summary>
    public static byte[] Portions(string title, IReadOnlyList<string> taskLabels, IReadOnlyList<PortionEstimate> portions,
        int width = 900, int height = 380) =>
        PortionsPlot(title, taskLabels, portions).GetImageBytes(width, height, ImageFormat.Png);

    internal static Plot PortionsPlot(string title, IReadOnlyList<string> taskLabels, IReadOnlyList<PortionEstimate> portions)
    {
        var plot = NewPlot(title);
        AddReference(plot, 0, "0 = low", SeriesColor(0), LinePattern.Dotted);
        AddReference(plot, 1, "1 = high", SeriesColor(2), LinePattern.Dashed);
        var xs = new List<double>(); var ys = new List<double>(); var neg = new List<double>(); var pos = new List<double>();
        double lo = -0.1, hi = 1.1;
        for (var i = 0; i < portions.Count; i++)
        {
            var p = portions[i];
            if (p.Value is { } v && p.Ci95 is { } ci)
            {
                xs.Add(i); ys.Add(v); neg.Add(v - ci.Low); pos.Add(ci.High - v);
                lo = Math.Min(lo, ci.Low); hi = Math.Max(hi, ci.High);
                var label = plot.Add.Text(v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture), i + 0.08, v);
                label.LabelFontSize = 13;
                label.LabelAlignment = ScottPlot.Alignment.MiddleLeft;
            }
            else
            {
                plot.Add.Marker(i, 0, MarkerShape.Eks, 14, Colors.Gray);
                var why = p.Undefined == PortionUndefined.HighEqualsLow ? "high = low" : "high ≈ low";
                var label = plot.Add.Text($"undefined ({why})", i, 0);
                label.LabelFontColor = Colors.DimGray;
                label.LabelFontSize = 13;
                label.LabelAlignment = ScottPlot.Alignment.LowerCenter;
                label.OffsetY = -12;
            }
        }
        if (xs.Count > 0)
        {
            var sc = plot.Add.ScatterPoints(xs.ToArray(), ys.ToArray(), SeriesColor(1));
            sc.MarkerSize = 11;
            sc.LegendText = "portion (95% CI)";
            AddWhiskers(plot, xs, ys, neg, pos, SeriesColor(1));
        }
        // Very wide intervals (a small high − low) would squash the rest; the table gives the exact numbers.
        lo = Math.Max(lo, -2); hi = Math.Min(hi, 3);
        plot.Axes.Bottom.SetTicks(taskLabels.Select((_, i) => (double)i).ToArray(), taskLabels.ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-0.6, taskLabels.Count - 0.4, lo - 0.1, hi + 0.25);
        plot.YLabel("(mid − low) / (high − low)");
        LegendBelow(plot);
        return plot;
    }

    /// <summary>A metric against the head's scale alpha, with 95% intervals, and the low and high variants as reference lines.</summary>
    public static byte[] AlphaCurve(string title, string metric, IReadOnlyList<double> alphas, IReadOnlyList<BarValue> values,
        (string Label, double Value) low, (string Label, double Value) high, int width = 560, int height = 360)
    {
        var plot = NewPlot(title);
        AddReference(plot, low.Value, low.Label, SeriesColor(0), LinePattern.Dotted);
        AddReference(plot, high.Value, high.Label, SeriesColor(2), LinePattern.Dashed);
        var xs = alphas.ToArray();
        var ys = values.Select(v => v.Mean).ToArray();
        var line = plot.Add.Scatter(xs, ys, SeriesColor(1));
        line.LineWidth = 2;
        line.MarkerSize = 9;
        line.LegendText = "head scaled by alpha";
        AddWhiskers(plot, xs, ys, values.Select(v => v.Mean - v.Ci95.Low).ToArray(), values.Select(v => v.Ci95.High - v.Mean).ToArray(), SeriesColor(1));
        plot.XLabel("alpha");
        plot.YLabel(metric);
        LegendBelow(plot);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    const double MinPortionShown = -2, MaxPortionShown = 3;

    static readonly MarkerShape[] Markers =
        [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle];

    /// <summary>
    /// The portion against alpha, one line per task: the trade-off view of a sweep (e.g. how much of the
    /// safety change is reached while how much of the math change is lost). Undefined portions are left out.
    /// </summary>
    public static byte[] PortionCurves(string title, IReadOnlyList<double> alphas, IReadOnlyList<(string Task, IReadOnlyList<PortionEstimate> Portions)> tasks,
        int width = 900, int height = 400)
    {
        var plot = NewPlot(title);
        AddReference(plot, 0, "0 = low", SeriesColor(0), LinePattern.Dotted);
        AddReference(plot, 1, "1 = high", SeriesColor(2), LinePattern.Dashed);
        double lo = -0.1, hi = 1.1;
        for (var k = 0; k < tasks.Count; k++)
        {
            var points = alphas.Zip(tasks[k].Portions).Where(x => x.Second.Value is not null).ToArray();
            if (points.Length == 0) continue;
            var xs = points.Select(x => x.First).ToArray();
            var ys = points.Select(x => x.Second.Value!.Value).ToArray();
            var line = plot.Add.Scatter(xs, ys, SeriesColor(k + 3));
            line.LineWidth = 2;
            line.MarkerSize = 9;
            line.MarkerShape = Markers[k % Markers.Length]; // told apart without colour, too
            // the axis stops at [-2, 3]; say so in the legend rather than let a task silently leave the chart
            var off = ys.Where(y => y < MinPortionShown || y > MaxPortionShown).ToArray();
            line.LegendText = off.Length == 0 ? tasks[k].Task
                : $"{tasks[k].Task} ({off.Length} point{(off.Length == 1 ? "" : "s")} off the axis, {off.Min():0.##} to {off.Max():0.##})";
            AddWhiskers(plot, xs, ys, points.Select(x => x.Second.Value!.Value - x.Second.Ci95!.Value.Low).ToArray(),
                points.Select(x => x.Second.Ci95!.Value.High - x.Second.Value!.Value).ToArray(), SeriesColor(k + 3));
            lo = Math.Min(lo, points.Min(x => x.Second.Ci95!.Value.Low));
            hi = Math.Max(hi, points.Max(x => x.Second.Ci95!.Value.High));
        }
        var pad = (alphas.Max() - alphas.Min()) * 0.05 + 0.05;
        plot.Axes.SetLimits(alphas.Min() - pad, alphas.Max() + pad, Math.Max(lo, MinPortionShown) - 0.1, Math.Min(hi, MaxPortionShown) + 0.1);
        plot.XLabel("alpha");
        plot.YLabel("portion of the low → high change");
        LegendBelow(plot);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>
    /// A metric against the strength of a compromise, one line per series (with 95% whiskers; a missing point
    /// is left out) and the target level as a dashed line; the x axis is categorical (the compromises in order).
    /// </summary>
    public static byte[] StrengthCurves(string title, string metric, IReadOnlyList<string> strengths,
        IReadOnlyList<(string Label, IReadOnlyList<BarValue?> Values)> series, double? target, int width = 900, int height = 400)
    {
        var plot = NewPlot(title);
        if (target is { } t) AddReference(plot, t, "aligned", SeriesColor(2), LinePattern.Dashed);
        for (var k = 0; k < series.Count; k++)
        {
            var points = series[k].Values.Select((v, i) => (X: (double)i, V: v)).Where(p => p.V is not null).ToArray();
            if (points.Length == 0) continue;
            var xs = points.Select(p => p.X).ToArray();
            var ys = points.Select(p => p.V!.Mean).ToArray();
            var line = plot.Add.Scatter(xs, ys, SeriesColor(k == 0 ? 0 : k + 2));
            line.LineWidth = 2;
            line.MarkerSize = 9;
            line.MarkerShape = Markers[k % Markers.Length];
            line.LegendText = series[k].Label;
            AddWhiskers(plot, xs, ys, points.Select(p => p.V!.Mean - p.V.Ci95.Low).ToArray(), points.Select(p => p.V!.Ci95.High - p.V.Mean).ToArray(),
                SeriesColor(k == 0 ? 0 : k + 2));
        }
        plot.Axes.Bottom.SetTicks(strengths.Select((_, i) => (double)i).ToArray(), strengths.ToArray());
        plot.XLabel("compromise (fine-tuning steps)");
        plot.YLabel(metric);
        LegendBelow(plot);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    // ScottPlot's own sans-serif pick falls back to a serif face on Linux machines without Microsoft fonts;
    // prefer the common Linux sans faces (they have the arrows and minus signs used in labels).
    static readonly string FontName =
        new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" }.FirstOrDefault(f => Fonts.GetTypeface(f, false, false)?.FamilyName == f) ?? Fonts.Default;

    static Plot NewPlot(string title)
    {
        var plot = new Plot();
        plot.Font.Set(FontName);
        plot.Title(title, 16);
        plot.Axes.Left.TickLabelStyle.FontSize = 13;
        plot.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plot.Grid.XAxisStyle.MajorLineStyle.Width = 0;
        return plot;
    }

    // Outside the data area, so it never hides a bar or a point.
    static void LegendBelow(Plot plot)
    {
        plot.ShowLegend(Edge.Bottom);
        plot.Legend.Orientation = Orientation.Horizontal;
    }

    // Reference lines differ in colour and pattern, so their legend entries can be told apart (and from the data).
    static void AddReference(Plot plot, double y, string label, Color color, LinePattern pattern)
    {
        var line = plot.Add.HorizontalLine(y, 1.5f, color, pattern);
        line.LegendText = label;
    }

    // By property name: ScottPlot's constructor takes the positive (upper) errors before the negative ones,
    // so passing them positionally drew every asymmetric interval upside down.
    static void AddWhiskers(Plot plot, IReadOnlyList<double> xs, IReadOnlyList<double> ys, IReadOnlyList<double> below, IReadOnlyList<double> above, Color color)
    {
        var zeros = new double[xs.Count];
        var eb = new ScottPlot.Plottables.ErrorBar(xs, ys, zeros, zeros, zeros, zeros)
        {
            YErrorNegative = below.Select(Math.Abs).ToArray(),
            YErrorPositive = above.Select(Math.Abs).ToArray(),
            XErrorNegative = null,
            XErrorPositive = null,
            Color = color,
            LineWidth = 1.5f,
            CapSize = 6,
        };
        plot.Add.Plottable(eb);
    }
}
