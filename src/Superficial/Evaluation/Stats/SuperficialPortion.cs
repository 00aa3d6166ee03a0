using System.Globalization;

namespace Superficial.Evaluation.Stats;

/// <summary>Why a superficial portion is undefined.</summary>
public enum PortionUndefined
{
    /// <summary>high − low is zero (below <see cref="SuperficialPortion.Epsilon"/>): there is no change to take a share of.</summary>
    HighEqualsLow,
    /// <summary>The 95% interval of high − low contains 0: the denominator's sign is not established.</summary>
    NotDistinguishable,
    /// <summary>Pooled over several runs (organisms): the portion is undefined on at least one of them, so a pooled share
    /// would mix in a change those runs do not show.</summary>
    UndefinedOnARun,
}

/// <summary>The superficial portion of a comparison on one task, or null with the reason it is undefined.</summary>
/// <param name="Value">(mid − low) / (high − low), or null when high and low are not distinguishable.</param>
/// <param name="Ci95">95% paired-bootstrap percentile interval of the portion; null when the portion is.</param>
/// <param name="Note">Why the portion is null, or the high − low difference it rests on (summary.json's "portion_note").</param>
public sealed record PortionEstimate(double? Value, Interval? Ci95, string Note)
{
    /// <summary>Why <see cref="Value"/> is null; null when it is defined.</summary>
    public PortionUndefined? Undefined { get; init; }
}

/// <summary>
/// The portion of the low → high change that the mid variant achieves: (mid − low) / (high − low), on the
/// task's metric (a mean of per-example scores). The ratio is unchanged by flipping the metric's sign, so
/// it needs no "higher is better". Rule for a null portion: the portion is null when |high − low| is below
/// <see cref="Epsilon"/>, or when the paired-bootstrap 95% interval of high − low contains 0 (then the
/// denominator's sign is not established and the ratio is meaningless). Otherwise its interval is the 95%
/// percentile interval of the per-resample ratios, leaving out the resamples in which high − low is 0 or has
/// the opposite sign (at most 2.5% of them under the rule); the note reports how many were left out.
/// </summary>
public static class SuperficialPortion
{
    public const double Epsilon = 1e-9;

    /// <summary>Estimates the portion from the three variants' bootstrap means (from one paired bootstrap).</summary>
    public static PortionEstimate Estimate(BootstrapMean low, BootstrapMean mid, BootstrapMean high)
    {
        if (low.N != mid.N || low.N != high.N)
            throw new ArgumentException($"Portion needs variants scored on the same examples (n = {low.N}, {mid.N}, {high.N}).");
        var r = low.Replicates.Count;
        if (mid.Replicates.Count != r || high.Replicates.Count != r)
            throw new ArgumentException("Portion needs bootstrap means from the same paired resamples.");

        var diff = high.Mean - low.Mean;
        var diffReplicates = new double[r];
        for (var i = 0; i < r; i++) diffReplicates[i] = high.Replicates[i] - low.Replicates[i];
        var diffCi = Percentile.Interval(diffReplicates);
        var diffText = string.Create(CultureInfo.InvariantCulture,
            $"high - low = {diff:+0.000;-0.000;0.000}, 95% CI [{diffCi.Low:0.000}, {diffCi.High:0.000}]");

        if (Math.Abs(diff) < Epsilon)
            return Undefined(PortionUndefined.HighEqualsLow, $"({diffText})");
        if (diffCi.Contains(0))
            return Undefined(PortionUndefined.NotDistinguishable, $"({diffText} contains 0)");

        var value = (mid.Mean - low.Mean) / diff;
        var ratios = new List<double>(r);
        for (var i = 0; i < r; i++)
        {
            var d = diffReplicates[i];
            if (Math.Abs(d) < Epsilon || Math.Sign(d) != Math.Sign(diff)) continue;
            ratios.Add((mid.Replicates[i] - low.Replicates[i]) / d);
        }
        var left = r - ratios.Count;
        var note = left == 0 ? diffText : $"{diffText}; {left} of {r} resamples with high - low tied or reversed left out";
        return new PortionEstimate(value, Percentile.Interval(ratios), note);
    }

    const string UndefinedPrefix = "undefined: ";

    static string Phrase(PortionUndefined why) => why switch
    {
        PortionUndefined.HighEqualsLow => "high and low are equal",
        PortionUndefined.NotDistinguishable => "high and low are not distinguishable",
        PortionUndefined.UndefinedOnARun => "the portion is undefined on some of the pooled runs",
        _ => throw new ArgumentOutOfRangeException(nameof(why)),
    };

    /// <summary>The pooled portion of several runs when some of them have none (<paramref name="detail"/> names them).</summary>
    public static PortionEstimate UndefinedOnSomeRuns(string detail) => Undefined(PortionUndefined.UndefinedOnARun, $"({detail})");

    static PortionEstimate Undefined(PortionUndefined why, string detail) =>
        new(null, null, $"{UndefinedPrefix}{Phrase(why)} {detail}") { Undefined = why };

    /// <summary>
    /// The reason of an undefined portion read back from the note <see cref="Estimate"/> wrote (summary.json keeps
    /// only the note); null for a defined portion. A note this code did not write is an error, not a guess.
    /// </summary>
    public static PortionUndefined? ReasonOf(double? value, string note)
    {
        if (value is not null) return null;
        foreach (var why in Enum.GetValues<PortionUndefined>())
            if (note.StartsWith(UndefinedPrefix + Phrase(why) + " ", StringComparison.Ordinal)) return why;
        throw new FormatException($"portion_note \"{note}\": an undefined portion's note starts with \"{UndefinedPrefix}\" and one of: " +
                                  string.Join(", ", Enum.GetValues<PortionUndefined>().Select(Phrase)) + ".");
    }
}
