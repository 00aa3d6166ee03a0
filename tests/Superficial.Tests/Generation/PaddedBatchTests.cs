using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Generation;

/// <summary>The one left-padded batch that generation, scoring, extraction, side models and serving read.</summary>
public class PaddedBatchTests
{
    static long[] Flat(Tensor t) => t.cpu().data<long>().ToArray();

    [Fact]
    public void LeftPadsIdsMaskAndPositions()
    {
        using var scope = NewDisposeScope();
        var b = PaddedBatch.Left([[5, 6, 7], [8], [1, 2]], padId: 99, CPU, capacity: 5);
        Assert.Equal(3, b.Width);
        Assert.Equal([0, 2, 1], b.Offsets);
        Assert.Equal([3L, 3], b.Ids.shape);
        Assert.Equal([5L, 6, 7, 99, 99, 8, 99, 1, 2], Flat(b.Ids));
        Assert.Equal([3L, 5], b.Mask.shape);
        Assert.Equal([1L, 1, 1, 0, 0, /**/ 0, 0, 1, 0, 0, /**/ 0, 1, 1, 0, 0], Flat(b.Mask));
        Assert.Equal([3L, 3], b.Attention.shape);
        Assert.Equal([0L, 1, 2, 0, 0, 0, 0, 0, 1], Flat(b.Positions));
        Assert.Equal(2 * 3 + 1 + 0, b.FlatIndex(2, 0));
        Assert.Equal(1 * 3 + 2 + 0, b.FlatIndex(1, 0));
        Assert.Equal(0 * 3 + 0 + 2, b.FlatIndex(0, 2));
        Assert.Throws<ArgumentException>(() => PaddedBatch.Left([], 0, CPU));
    }

    [Fact]
    public void SharedPaddingAndPadLeft()
    {
        using var scope = NewDisposeScope();
        var m = tensor(new long[] { 0, 0, 1, 1, 0, 1, 1, 1 }, [2, 4]);
        Assert.Equal(1, PaddedBatch.SharedPadding(m));
        var wide = PaddedBatch.PadLeft(m, 6);
        Assert.Equal([0L, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1], Flat(wide));
        Assert.Equal(3, PaddedBatch.SharedPadding(wide));
        Assert.Same(m, PaddedBatch.PadLeft(m, 4));
    }

    [Fact]
    public void PaddedRowsReadAsTheyDoAloneThroughAModel()
    {
        var c = ModelConfig.Llama(vocabSize: 97, hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, maxPositions: 64, tieWordEmbeddings: false);
        using var model = CausalLM.Create(c, seed: 11);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        IReadOnlyList<int>[] rows = [[3, 1, 4, 1, 5, 9, 2], [42], [7, 7, 8]];
        var batch = PaddedBatch.Left(rows, padId: 0, CPU);
        var hidden = model.Forward(batch.Ids, batch.Positions, null, batch.Attention).reshape(rows.Length * batch.Width, -1);
        // another pad id must change nothing the rows read
        var other = PaddedBatch.Left(rows, padId: 96, CPU);
        var hiddenOther = model.Forward(other.Ids, other.Positions, null, other.Attention).reshape(rows.Length * other.Width, -1);
        for (int r = 0; r < rows.Length; r++)
        {
            var alone = model.Forward(tensor(rows[r].Select(x => (long)x).ToArray(), [1, rows[r].Count]))[0];
            for (int j = 0; j < rows[r].Count; j++)
            {
                var inBatch = hidden[batch.FlatIndex(r, j)];
                var diff = (inBatch - alone[j]).abs().max().item<float>();
                Assert.True(diff <= 1e-5, $"row {r} token {j}: batched vs alone max diff {diff}");
                Assert.True((inBatch == hiddenOther[other.FlatIndex(r, j)]).all().item<bool>(), $"row {r} token {j}: the pad id changed the hidden state");
            }
        }
    }
}
