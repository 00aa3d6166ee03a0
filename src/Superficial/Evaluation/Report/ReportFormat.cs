using System.Globalization;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Report;

/// <summary>How numbers appear in the report (invariant culture, three decimals).</summary>
public static class ReportFormat
{
    public static string Number(double x) => x.ToString("0.000", CultureInfo.InvariantCulture);
    public static string Interval(Interval i) => $"[{Number(i.Low)}, {Number(i.High)}]";
    public static string WithInterval(double x, Interval i) => $"{Number(x)} {Interval(i)}";
    public static string Portion(PortionEstimate p) =>
        p.Value is { } v && p.Ci95 is { } ci ? WithInterval(v, ci) : "undefined";
}
