using Superficial.Alignment;
using static TorchSharp.torch;

namespace Superficial.Tests.Analysis;

/// <summary>The reference's split (last 5% of positions in storage order) and its last-epoch head, used by --preset paper.</summary>
public class PaperPresetTests
{
    [Fact]
    public void TailSplitHoldsOutTheLastPositionsAndKeepLastKeepsTheLastEpoch()
    {
        int n = 100, hdim = 6, v = 12, k = 4;
        var gen = new TorchSharp.torch.Generator(5);
        var hidden = randn([n, hdim], generator: gen);
        hidden[.., 0] = arange(n, ScalarType.Float32);          // row i is recognisable by hidden[i, 0] = i
        var topLogits = randn([n, k], generator: gen).sort(1, descending: true).Values;
        var topIds = stack(Enumerable.Range(0, n).Select(_ => randperm(v, generator: gen).narrow(0, 0, k)).ToArray());
        var seq = Enumerable.Range(0, n).Select(i => i / 7).ToArray();
        var pos = Enumerable.Range(0, n).Select(i => i % 7).ToArray();
        using var tmp = TestPaths.NewTempDir("tail");
        AnalysisMathTests.WriteExtraction(tmp.Path, hidden, topIds, topLogits, seq, pos, v, chunkRows: 30);
        var data = ExtractionData.Open([tmp.Path]);
        Assert.True(data.Chunks.Count >= 3);

        int[] Rows(bool held) => data.Batches(held, 16, k, 0.05, 0, 1, true, tailSplit: true)
            .SelectMany(b => { using var _ = b; return b.Hidden[.., 0].data<float>().ToArray(); }).Select(x => (int)x).Order().ToArray();
        Assert.Equal([95, 96, 97, 98, 99], Rows(true));           // int(100 * 0.95) = 95, as the reference's train_num
        Assert.Equal(Enumerable.Range(0, 95).ToArray(), Rows(false));

        var w = randn([v, hdim], generator: gen);
        var options = new HeadTrainingOptions { Init = HeadInit.Random, LearningRate = 1e-1, BatchSize = 10, Epochs = 4, HeldOutSplit = HeldOutSplit.Tail, KeepLast = true };
        var result = HeadTrainer.Train(data, w, Path.Combine(tmp.Path, "head.safetensors"), options);
        Assert.Equal(4, result.BestEpoch);
        Assert.Equal(5, result.BestHeldOut.Positions);
        Assert.Equal("tail", (string)result.Head.Info["settings"]!["heldout_split"]!);
        Assert.Equal("last", (string)result.Head.Info["settings"]!["keep"]!);
        result.Head.Dispose();
    }
}
