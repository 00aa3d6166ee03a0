using System.Globalization;

namespace Superficial.Evaluation.Runner;

/// <summary>
/// Three variants whose metrics give a portion (Mid − Low) / (High − Low): the main one is
/// base → base+head → aligned; later stages compare transfer to a larger model and recovery of a
/// compromised model.
/// </summary>
public sealed record Comparison(string Name, string Low, string Mid, string High)
{
    public static Comparison Superficial { get; } = new("superficial", "base", "base+head", "aligned");
    public static Comparison Transfer { get; } = new("transfer", "large-base", "large-base+head", "large-aligned");
    public static Comparison Recovery { get; } = new("recovery", "compromised", "compromised+head", "aligned");

    /// <summary>The separator of an alpha-sweep variant's name: "base+head@a=1.5" is base+head with its head scaled by 1.5.</summary>
    public const string AlphaTag = "@a=";

    public IReadOnlyList<string> Variants => [Low, Mid, High];

    /// <summary>
    /// The alpha-sweep comparisons implied by the evaluated variants: for every variant named
    /// <c>Mid + "@a=" + alpha</c>, the comparison <c>Name + "@a=" + alpha</c> with that variant as Mid.
    /// </summary>
    public IReadOnlyList<(Comparison Comparison, double Alpha)> AlphaSweep(IEnumerable<string> variantNames) =>
        variantNames
            .Select(v => (Variant: v, Alpha: TryParseAlpha(v, out var baseName, out var a) && baseName == Mid ? a : (double?)null))
            .Where(x => x.Alpha.HasValue)
            .OrderBy(x => x.Alpha!.Value)
            .Select(x => (new Comparison(Name + x.Variant[Mid.Length..], Low, x.Variant, High), x.Alpha!.Value))
            .ToArray();

    /// <summary>Splits "base+head@a=1.5" into ("base+head", 1.5); false for names without a valid alpha tag.</summary>
    public static bool TryParseAlpha(string variant, out string baseName, out double alpha)
    {
        var at = variant.LastIndexOf(AlphaTag, StringComparison.Ordinal);
        baseName = at < 0 ? variant : variant[..at];
        alpha = double.NaN;
        return at > 0 && double.TryParse(variant[(at + AlphaTag.Length)..], NumberStyles.Float, CultureInfo.InvariantCulture, out alpha)
               && double.IsFinite(alpha);
    }
}
