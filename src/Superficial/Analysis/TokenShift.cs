using static TorchSharp.torch;

namespace Superficial.Analysis;

/// <summary>URIAL's token-distribution-shift categories for the aligned model's chosen token, by its rank in another model's distribution.</summary>
public enum ShiftCategory { Unshifted = 0, Marginal = 1, Shifted = 2 }

/// <summary>
/// Token shift (Lin et al., "The Unlocking Spell on Base LLMs", URIAL): the aligned model's greedy token
/// is <em>unshifted</em> if the other model ranks it first, <em>marginal</em> at rank 2 or 3, and
/// <em>shifted</em> otherwise.
/// </summary>
public static class TokenShift
{
    public const int Categories = 3;
    public static readonly string[] Names = ["unshifted", "marginal", "shifted"];

    public static ShiftCategory Classify(int rank) => rank switch
    {
        < 1 => throw new ArgumentOutOfRangeException(nameof(rank), rank, "ranks start at 1."),
        1 => ShiftCategory.Unshifted,
        <= 3 => ShiftCategory.Marginal,
        _ => ShiftCategory.Shifted,
    };

    /// <summary>
    /// The 1-based rank of <paramref name="ids"/>[i] in row i of <paramref name="logits"/> [n, V]: one plus the
    /// number of tokens with a strictly larger logit (ties share the better rank, as greedy decoding would
    /// pick either).
    /// </summary>
    public static int[] Ranks(Tensor logits, Tensor ids)
    {
        using var scope = NewDisposeScope();
        var chosen = logits.gather(1, ids.to_type(ScalarType.Int64).reshape(-1, 1));
        var above = logits.gt(chosen).sum(1, type: ScalarType.Int64) + 1;
        return above.to_type(ScalarType.Int32).cpu().data<int>().ToArray();
    }
}
