using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Tensors;

/// <summary>
/// Extraction's host top-k against two independent computations: a full sort of (value desc, index asc) and
/// libtorch's topk (the same values, bit for bit), on random rows, rows full of ties, ascending and descending rows,
/// rows within one bucket of the radix select, signed zeros, infinities, and a NaN (refused, so libtorch decides).
/// </summary>
public class TopKTests
{
    static (float[] v, int[] i) Host(float[] row, int k)
    {
        var v = new float[k];
        var i = new int[k];
        Assert.True(TopK.Row(row, v, i), "refused a row without NaN");
        return (v, i);
    }

    static void MatchesFullSort(float[] row, int k, string what)
    {
        var (v, i) = Host(row, k);
        var want = Enumerable.Range(0, row.Length).OrderByDescending(j => row[j]).ThenBy(j => j).Take(k).ToArray();
        if (!want.SequenceEqual(i)) Assert.Fail($"{what}, k {k}: ids differ from the full sort at entry {Enumerable.Range(0, k).First(j => want[j] != i[j])}");
        Assert.True(want.Select(j => row[j]).SequenceEqual(v), $"{what}, k {k}: values differ");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(500)]
    [InlineData(4001)]
    public void RandomRowsMatchAFullSortAndLibtorch(int k)
    {
        var g = new Random(k);
        var row = Enumerable.Range(0, 32000).Select(_ => (float)(g.NextDouble() * 20 - 10)).ToArray();
        MatchesFullSort(row, k, "random");
        var (v, _) = Host(row, k);
        using var t = tensor(row);
        var (lv, li) = t.topk(k, 0, largest: true, sorted: true);
        Assert.True(lv.data<float>().ToArray().SequenceEqual(v), "values differ from libtorch's topk");
        lv.Dispose(); li.Dispose();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(500)]
    public void TiesGoToTheLowerIndexAsArgmaxDoes(int k)
    {
        var g = new Random(3);
        // BF16-precision logits (8 significant bits): many equal values among 32000
        var row = Enumerable.Range(0, 32000).Select(_ => (float)(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits((float)(g.NextDouble() * 8)) & unchecked((int)0xFFFF0000)))).ToArray();
        MatchesFullSort(row, k, "bf16-rounded");
        var small = Enumerable.Range(0, 1000).Select(_ => (float)g.Next(0, 5)).ToArray();
        MatchesFullSort(small, k, "five distinct values");
        using var t = tensor(small);
        Assert.Equal(t.argmax().item<long>(), Host(small, k).i[0]);
    }

    [Fact]
    public void WorstOrdersEqualRowsInfinitiesAndTheWholeRow()
    {
        var ascending = Enumerable.Range(0, 5000).Select(j => (float)j).ToArray();
        MatchesFullSort(ascending, 100, "ascending");
        MatchesFullSort(ascending.Reverse().ToArray(), 100, "descending");
        MatchesFullSort(Enumerable.Repeat(1.5f, 300).ToArray(), 20, "all equal");
        var inf = Enumerable.Range(0, 100).Select(j => j % 10 == 0 ? float.NegativeInfinity : j % 17 == 0 ? float.PositiveInfinity : j * 0.5f).ToArray();
        MatchesFullSort(inf, 30, "infinities");
        MatchesFullSort(inf, 100, "infinities, the whole row");
        MatchesFullSort(new float[] { 3, -1, 2 }, 3, "a row shorter than a vector");
    }

    [Fact]
    public void NarrowRowsSignedZerosAndBoundaryTies()
    {
        var g = new Random(11);
        // every value in one quarter-binade, most in one 2^-10 step: the selection refines on the key's lower bits
        var narrow = Enumerable.Range(0, 32000).Select(_ => 1f + (float)g.Next(0, 3000) * 1e-7f).ToArray();
        foreach (int k in new[] { 1, 500, 4001 }) MatchesFullSort(narrow, k, "narrow");
        // -0 and +0 are equal (ordered by index, as the heap and a full sort order them), and each keeps its sign
        var zeros = Enumerable.Range(0, 2000).Select(j => j % 3 == 0 ? -0f : j % 3 == 1 ? 0f : -(float)(j % 7) - 1f).ToArray();
        foreach (int k in new[] { 5, 700, 1400 })
        {
            MatchesFullSort(zeros, k, "signed zeros");
            var (v, i) = Host(zeros, k);
            for (int e = 0; e < k; e++)
                Assert.Equal(BitConverter.SingleToInt32Bits(zeros[i[e]]), BitConverter.SingleToInt32Bits(v[e]));
        }
        // the k-th value repeated far beyond k: the lowest indices among its copies are taken
        var plateau = Enumerable.Range(0, 10000).Select(j => j % 50 == 0 ? 9f : 4f).ToArray();
        MatchesFullSort(plateau, 300, "plateau at the boundary");
        var gaussian = Enumerable.Range(0, 32000).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - g.NextDouble())) * Math.Cos(2 * Math.PI * g.NextDouble()) * 3)).ToArray();
        MatchesFullSort(gaussian, 500, "gaussian logits");
    }

    [Fact]
    public void ARowWithNaNIsRefused()
    {
        foreach (int at in new[] { 2, 40, 4999 })
        {
            var row = Enumerable.Range(0, 5000).Select(j => (float)Math.Sin(j)).ToArray();
            row[at] = float.NaN;
            Assert.False(TopK.Row(row, new float[10], new int[10]), $"NaN at {at} was not refused");
        }
        Assert.Throws<ArgumentException>(() => TopK.Row(new float[3], new float[4], new int[4]));
    }
}
