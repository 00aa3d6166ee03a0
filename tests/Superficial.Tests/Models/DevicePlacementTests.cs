using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>
/// Splitting a model's layers across devices: the placement (a pure function of the config, the dtype and the
/// devices' capacities) against hand-computed splits, and the split forward (every stage on the CPU, hidden states
/// handed from stage to stage) against the single-device forward, with and without a KV cache.
/// </summary>
public class DevicePlacementTests
{
    static readonly ModelConfig Llama7B = ModelShapes.Llama2_7B;
    const long LayerBytesF16 = (4L * 4096 * 4096 + 3L * 4096 * 11008 + 2 * 4096) * 2; // 404,766,720
    const long EmbeddingBytesF16 = 32000L * 4096 * 2;                                // 262,144,000

    [Fact]
    public void FillsDevicesInOrderByCapacity()
    {
        Assert.Equal((EmbeddingBytesF16, LayerBytesF16, EmbeddingBytesF16 + 4096 * 2), DevicePlacement.Sizes(Llama7B, ScalarType.BFloat16));
        // cuda:0 may use 90 % of 8 GB = 7.2e9: the embedding and floor((7.2e9 - 2.62e8) / 4.05e8) = 17 layers
        var p = DevicePlacement.Plan(Llama7B, ScalarType.BFloat16, [new("cuda:0", 8_000_000_000), new("cuda:1", 24_000_000_000)]);
        Assert.Equal(0, p.EmbeddingDevice);
        Assert.Equal(Enumerable.Repeat(0, 17).Concat(Enumerable.Repeat(1, 15)), p.LayerDevices);
        Assert.Equal(1, p.HeadDevice);
        Assert.Equal("cuda:0: embedding + layers 0-16; cuda:1: layers 17-31 + head", p.Describe());
    }

    [Fact]
    public void SkipsADeviceTooSmallAndKeepsATiedHeadWithTheEmbedding()
    {
        var tied = Llama7B with { TieWordEmbeddings = true };
        var p = DevicePlacement.Plan(tied, ScalarType.BFloat16,
            [new("cuda:0", 100_000_000), new("cuda:1", 40_000_000_000), new("cuda:2", 40_000_000_000)]);
        Assert.Equal(1, p.EmbeddingDevice);                  // 0.09 GB of room: not even the embedding fits
        Assert.All(p.LayerDevices, d => Assert.Equal(1, d)); // 36 GB of room holds everything
        Assert.Equal(p.EmbeddingDevice, p.HeadDevice);
    }

    [Fact]
    public void RefusesAModelThatDoesNotFitNamingTheSizes()
    {
        var e = Assert.Throws<PlacementException>(() =>
            DevicePlacement.Plan(Llama7B, ScalarType.Float32, [new("cuda:0", 16_000_000_000), new("cuda:1", 8_000_000_000)]));
        Assert.Contains("does not fit", e.Message);
        Assert.Contains("cuda:1 (8 GB)", e.Message);
        Assert.Contains("--dtype bfloat16", e.Message);
    }

    [Fact]
    public void BalancedSplitsLayersEvenly()
    {
        var p = DevicePlacement.Balanced(Llama7B, ScalarType.BFloat16, ["cuda:0", "cuda:1"]);
        int first = p.LayerDevices.Count(d => d == 0);
        Assert.InRange(first, 15, 17);
        Assert.Equal(1, p.HeadDevice);
    }

    static CausalLM Tiny(bool tied) => CausalLM.Create(ModelConfig.Llama(vocabSize: 97, hidden: 32, layers: 4, heads: 4, kvHeads: 2,
        intermediate: 48, maxPositions: 128, tieWordEmbeddings: tied), seed: 11);

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    public void ForwardSplitAcrossCpuStagesEqualsOneDevice(bool tied, int stages)
    {
        using var single = Tiny(tied);
        using var split = Tiny(tied);
        var placement = DevicePlacement.Balanced(split.Config, ScalarType.Float32, Enumerable.Repeat("cpu", stages).ToArray());
        Assert.True(placement.LayerDevices.Distinct().Count() >= 2, placement.Describe()); // really several stages
        split.Place(placement);
        Assert.Same(placement, split.Placement);
        using var noGrad = no_grad();
        // a left-padded batch with a mask
        using var ids = tensor(new long[] { 0, 0, 5, 9, 13, 4, 8, 15, 16, 23 }, [2, 5]);
        using var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, [2, 5]);
        using var a = single.Logits(single.Forward(ids, null, null, mask));
        using var b = split.Logits(split.Forward(ids, null, null, mask));
        Assert.True(a.equal(b).all().item<bool>(), "the split forward differs from the single-device one");
        // KV-cached greedy decoding (the cache keeps each layer's keys on its stage's device)
        var prompt = new[] { 3, 14, 15, 92, 65 };
        var o = new GenerationOptions { MaxNewTokens = 12, StopIds = [] };
        Assert.Equal(new TextGenerator(single, null).Generate([prompt], o)[0].TokenIds, new TextGenerator(split, null).Generate([prompt], o)[0].TokenIds);
    }
}
