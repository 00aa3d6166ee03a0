using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Generation;

/// <summary>
/// Token sequences of different lengths read as one batch, left-padded so that every row's last token is
/// in the last column: <see cref="Ids"/> [B, T] (padding filled with a pad id), <see cref="Mask"/> [B, capacity]
/// (1 for a token, 0 for padding and for the columns reserved for later tokens) and <see cref="Positions"/>
/// [B, T] (each row counts from 0 at its first token; padding reads position 0). Generation, scoring,
/// extraction, the side model of a transform and the serving batch all build their batches here. The
/// tensors are created in the caller's dispose scope.
/// </summary>
public sealed class PaddedBatch
{
    /// <summary>[B, T] token ids, left-padded.</summary>
    public Tensor Ids { get; }
    /// <summary>[B, capacity] attention mask (int64): the first <see cref="Width"/> columns cover <see cref="Ids"/>, later ones are 0.</summary>
    public Tensor Mask { get; }
    /// <summary>[B, T] position ids.</summary>
    public Tensor Positions { get; }
    /// <summary>T: the longest row's length.</summary>
    public int Width { get; }
    /// <summary>Padding columns before each row's first token.</summary>
    public IReadOnlyList<int> Offsets { get; }

    /// <summary>The mask's columns that cover <see cref="Ids"/> [B, T].</summary>
    public Tensor Attention => Mask.shape[1] == Width ? Mask : Mask.narrow(1, 0, Width);

    PaddedBatch(Tensor ids, Tensor mask, Tensor positions, int width, int[] offsets) =>
        (Ids, Mask, Positions, Width, Offsets) = (ids, mask, positions, width, offsets);

    /// <summary>
    /// Left-pads <paramref name="rows"/> with <paramref name="padId"/> (which no row attends to). The mask has
    /// <paramref name="capacity"/> columns when that exceeds the width (room for generated tokens).
    /// </summary>
    public static PaddedBatch Left(IReadOnlyList<IReadOnlyList<int>> rows, long padId, Device device, int capacity = 0)
    {
        if (rows.Count == 0) throw new ArgumentException("a padded batch needs at least one row.", nameof(rows));
        int b = rows.Count, len = rows.Max(r => r.Count), cap = Math.Max(len, capacity);
        var ids = new long[b * len];
        var mask = new long[b * cap];
        var offsets = new int[b];
        for (int r = 0; r < b; r++)
        {
            int offset = offsets[r] = len - rows[r].Count;
            for (int j = 0; j < len; j++)
            {
                bool real = j >= offset;
                ids[r * len + j] = real ? rows[r][j - offset] : padId;
                mask[r * cap + j] = real ? 1 : 0;
            }
        }
        var maskT = tensor(mask, [b, cap], ScalarType.Int64).to(device);
        return new PaddedBatch(tensor(ids, [b, len], ScalarType.Int64).to(device), maskT,
            PositionsOf(cap == len ? maskT : maskT.narrow(1, 0, len)), len, offsets);
    }

    /// <summary>Index, in the flattened [B * T] batch, of row <paramref name="row"/>'s token <paramref name="index"/> (counted from its first token).</summary>
    public long FlatIndex(int row, int index) => (long)row * Width + Offsets[row] + index;

    /// <summary>Position ids of a left-padded mask [B, T]: tokens count from 0, padding reads 0.</summary>
    public static Tensor PositionsOf(Tensor mask) => mask.cumsum(1).Minus(1).clamp_min(Scalars.Zero);

    /// <summary>Leading columns of a mask [B, S] that every row pads (which a cache may therefore drop).</summary>
    public static int SharedPadding(Tensor mask) => (int)mask.cumsum(1).eq(Scalars.Zero).sum(1).min().item<long>();

    /// <summary>A mask [B, S] widened on the left with padding to <paramref name="width"/> columns.</summary>
    public static Tensor PadLeft(Tensor mask, int width) =>
        mask.shape[1] == width ? mask : cat([zeros([mask.shape[0], width - mask.shape[1]], mask.dtype, mask.device), mask], 1);
}
