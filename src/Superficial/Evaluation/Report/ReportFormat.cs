using System.Globalization;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Report;

/// <summary>How numbers appear in the report (invariant culture, three decimals).</summary>
public static class ReportFormat
{
    public static string Number(double x) => Fixed(x, "0.000");

    /// <summary>Invariant fixed-point text; a value that rounds to zero is "0.000", never "-0.000".</summary>
    public static string Fixed(double x, string format)
    {
        var s = x.ToString(format, CultureInfo.InvariantCulture);
        return s.StartsWith('-') && s.Skip(1).All(ch => ch is '0' or '.') ? s[1..] : s;
    }
    public static string Interval(Interval i) => $"[{Number(i.Low)}, {Number(i.High)}]";
    public static string WithInterval(double x, Interval i) => $"{Number(x)} {Interval(i)}";
    public static string Portion(PortionEstimate p) =>
        p.Value is { } v && p.Ci95 is { } ci ? WithInterval(v, ci) : "undefined";

    public static string Signed(double x) => (x > 0 ? "+" : "") + Number(x);

    /// <summary>
    /// A task whose metric is a rate in [0, 1] (all three means and intervals) has a portion that is a share of the
    /// change; others (e.g. benign NLL per character) are a cost, shown as the middle variant's change against the high one.
    /// </summary>
    public static bool IsShare(Runner.ComparisonTaskResult t) =>
        new[] { t.Low, t.Mid, t.High }.All(v => v.Mean is >= 0 and <= 1 && v.Ci95.Low >= 0 && v.Ci95.High <= 1);

    /// <summary>The portion with its interval, or for a non-rate metric its cost: "cost: +0.500 nll_per_char vs aligned (...)".</summary>
    public static string PortionOrCost(Runner.ComparisonTaskResult t, Runner.Comparison c) => IsShare(t) ? Portion(t.Portion)
        : $"cost: {Signed(t.Mid.Mean - t.High.Mean)} {t.Metric} vs {c.High} ({c.Mid} {Number(t.Mid.Mean)}, {c.High} {Number(t.High.Mean)})";
}
