using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>KV-cached decoding against full recomputation, and batched runs against single runs.</summary>
public class CacheAndBatchTests
{
    static CausalLM Tiny(int kvHeads, bool tied, string type = "llama")
    {
        var c = ModelConfig.Llama(vocabSize: 97, hidden: 32, layers: 2, heads: 4, kvHeads: kvHeads, intermediate: 48,
            maxPositions: 128, tieWordEmbeddings: tied) with { ModelType = type, QkvBias = type == "qwen2" };
        return CausalLM.Create(c, seed: 7);
    }

    static CausalLM TinyGpt2() => CausalLM.Create(new ModelConfig
    {
        ModelType = "gpt2", VocabSize = 97, HiddenSize = 32, NumLayers = 2, NumHeads = 4, NumKvHeads = 4, HeadDim = 8,
        IntermediateSize = 64, MaxPositions = 64, NormEps = 1e-5, TieWordEmbeddings = true, QkvBias = true, OutputBias = true,
        MlpBias = true, HiddenAct = "gelu_new",
    }, seed: 3);

    public static TheoryData<string> Variants => new() { "gqa-untied", "mha-tied", "mqa", "qwen2", "gpt2" };

    static CausalLM Make(string v) => v switch
    {
        "gqa-untied" => Tiny(2, false), "mha-tied" => Tiny(4, true), "mqa" => Tiny(1, true), "qwen2" => Tiny(2, true, "qwen2"),
        _ => TinyGpt2(),
    };

    [Theory, MemberData(nameof(Variants))]
    public void CachedDecodingEqualsFullRecompute(string variant)
    {
        using var model = Make(variant);
        using var noGrad = no_grad();
        var ids = tensor(Enumerable.Range(0, 20).Select(i => (long)(i * 13 % 97)).ToArray(), [1, 20]);
        using var full = model.Logits(model.Forward(ids));
        using var cache = model.NewCache(1, 4); // deliberately small: it must grow
        var pieces = new List<Tensor> { model.Logits(model.Forward(ids.narrow(1, 0, 7), null, cache)) };
        for (int t = 7; t < 20; t++) pieces.Add(model.Logits(model.Forward(ids.narrow(1, t, 1), null, cache)));
        using var stepped = cat(pieces, 1);
        var diff = (stepped - full).abs().max().item<float>();
        Assert.True(diff <= 1e-4, $"{variant}: cached vs full max diff {diff}");
    }

    [Theory, MemberData(nameof(Variants))]
    public void LeftPaddedBatchEqualsRowsAlone(string variant)
    {
        using var model = Make(variant);
        var prompts = new[] { new[] { 5, 9, 11 }, new[] { 3, 1, 4, 1, 5, 9, 2, 6 }, new[] { 42 } };
        var gen = new TextGenerator(model, null);
        var options = new GenerationOptions { MaxNewTokens = 10, StopIds = [] };
        var batch = gen.Generate(prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(gen.Generate([prompts[i]], options)[0].TokenIds, batch[i].TokenIds);

        // and the logits themselves, row by row
        using var noGrad = no_grad();
        int len = prompts.Max(p => p.Length);
        var ids = new long[prompts.Length * len];
        var mask = new long[prompts.Length * len];
        for (int r = 0; r < prompts.Length; r++)
            for (int j = 0; j < prompts[r].Length; j++)
            {
                ids[r * len + len - prompts[r].Length + j] = prompts[r][j];
                mask[r * len + len - prompts[r].Length + j] = 1;
            }
        using var batched = model.Logits(model.Forward(tensor(ids, [prompts.Length, len]), null, null, tensor(mask, [prompts.Length, len])));
        for (int r = 0; r < prompts.Length; r++)
        {
            using var alone = model.Logits(model.Forward(tensor(prompts[r].Select(x => (long)x).ToArray(), [1, prompts[r].Length])));
            var diff = (batched[r].narrow(0, len - prompts[r].Length, prompts[r].Length) - alone[0]).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"{variant} row {r}: batched vs alone max diff {diff}");
        }
    }

    [Fact]
    public void GenerationStopsOnEosAndKeepsOthersRunning()
    {
        using var model = Tiny(2, true);
        var gen = new TextGenerator(model, null);
        var free = gen.Generate([new[] { 1, 2, 3 }], new GenerationOptions { MaxNewTokens = 12, StopIds = [] })[0];
        int stopAt = free.TokenIds[3];
        var stopped = gen.Generate([new[] { 1, 2, 3 }, new[] { 7, 8 }], new GenerationOptions { MaxNewTokens = 12, StopIds = [stopAt] });
        Assert.Equal(FinishReason.Eos, stopped[0].Finish);
        Assert.Equal(stopAt, stopped[0].TokenIds[^1]);
        Assert.Equal(free.TokenIds.Take(free.TokenIds.ToList().IndexOf(stopAt) + 1), stopped[0].TokenIds);
        var other = gen.Generate([new[] { 7, 8 }], new GenerationOptions { MaxNewTokens = 12, StopIds = [stopAt] })[0];
        Assert.Equal(other.TokenIds, stopped[1].TokenIds);
    }

    [Fact]
    public void SamplingIsSeededAndTopPOfTinyMassIsGreedy()
    {
        using var model = Tiny(2, true);
        var gen = new TextGenerator(model, null);
        var o = new GenerationOptions { MaxNewTokens = 15, StopIds = [], Temperature = 1.0, Seed = 11 };
        Assert.Equal(gen.Generate([new[] { 4, 5 }], o)[0].TokenIds, gen.Generate([new[] { 4, 5 }], o)[0].TokenIds);
        Assert.NotEqual(gen.Generate([new[] { 4, 5 }], o)[0].TokenIds, gen.Generate([new[] { 4, 5 }], o with { Seed = 12 })[0].TokenIds);
        var greedy = gen.Generate([new[] { 4, 5 }], new GenerationOptions { MaxNewTokens = 15, StopIds = [] })[0].TokenIds;
        Assert.Equal(greedy, gen.Generate([new[] { 4, 5 }], o with { TopP = 1e-6 })[0].TokenIds);
    }

    [Fact]
    public void SaveAndLoadRoundTripsThroughHfFolder()
    {
        using var tmp = TestPaths.NewTempDir("model");
        using var model = Tiny(2, false);
        model.SaveHf(tmp.Path);
        Assert.True(File.Exists(tmp.File("config.json")) && File.Exists(tmp.File("model.safetensors")));
        using var loaded = CausalLM.Load(tmp.Path);
        var a = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in loaded.named_parameters()) Assert.True(a[n].equal(p).all().item<bool>(), n);
    }
}
