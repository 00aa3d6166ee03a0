namespace Superficial.Evaluation.Stats;

/// <summary>A closed interval [Low, High]; here a 95% bootstrap percentile interval.</summary>
public readonly record struct Interval(double Low, double High)
{
    public bool Contains(double x) => Low <= x && x <= High;
    public double Width => High - Low;
}
