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
}
