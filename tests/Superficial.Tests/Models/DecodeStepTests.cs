using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>
/// The fused decoding step (<see cref="LlamaDecodeStep"/>) against the module path it replaces: the same hidden states
/// to float rounding, the same cache contents, rows independent of their batch bit for bit, and the configurations it
/// does not cover left to the module path.
/// </summary>
public class DecodeStepTests
{
    static CausalLM Make(int kvHeads, bool bias, int hidden = 64, int heads = 4, int inter = 96, long seed = 11, ScalarType dtype = ScalarType.Float32)
    {
        var c = ModelConfig.Llama(vocabSize: 101, hidden: hidden, layers: 3, heads: heads, kvHeads: kvHeads, intermediate: inter,
            maxPositions: 256) with { QkvBias = bias, OutputBias = bias, MlpBias = bias };
        var m = CausalLM.Create(c, seed, dtype);
        // norms and biases away from their initial 1 and 0, so a wrong weight or a missing bias shows
        using (no_grad())
            foreach (var (name, p) in m.named_parameters())
                if (p.dim() == 1) p.copy_((rand(p.shape, generator: new Generator((ulong)name.Length)) * 0.5 + (name.EndsWith("bias") ? -0.25 : 0.75)).to_type(dtype));
        return m;
    }

    /// <summary>Prefill <paramref name="prompt"/> rows (left-padded by the mask), then <paramref name="steps"/> single-token steps; the hidden states of the steps.</summary>
    static (List<Tensor> hidden, KvCache cache) Decode(CausalLM model, long[,] prompt, long[,] mask, int steps, bool fused)
    {
        bool was = LlamaDecodeStep.Enabled;
        LlamaDecodeStep.Enabled = fused;
        try
        {
            using var noGrad = no_grad();
            int b = prompt.GetLength(0), t = prompt.GetLength(1);
            var full = ones([b, t + steps], ScalarType.Int64);
            full.narrow(1, 0, t).copy_(tensor(mask));
            var cache = model.NewCache(b, 4);   // small: the step must grow it
            model.Forward(tensor(prompt), null, cache, full.narrow(1, 0, t)).Dispose();
            var hidden = new List<Tensor>();
            var next = tensor(Enumerable.Range(0, b).Select(r => (long)(7 * r + 3)).ToArray()).reshape(b, 1);
            for (int s = 0; s < steps; s++)
            {
                var h = model.Forward(next, null, cache, full.narrow(1, 0, t + s + 1));
                hidden.Add(h);
                next = model.Logits(h.reshape(b, -1)).argmax(-1).unsqueeze(1);
            }
            return (hidden, cache);
        }
        finally { LlamaDecodeStep.Enabled = was; }
    }

    // head dims 16, 40 and 104: the attention's 64- and 32-wide passes over the values and its 8-wide remainder
    public static TheoryData<int, bool, int> Shapes => new() { { 4, false, 64 }, { 2, true, 64 }, { 1, false, 64 }, { 2, true, 160 }, { 2, false, 416 } };

    [Fact]
    public void Bf16FusedStepMatchesTheModulePathsRounding()
    {
        // BF16 rounds every activation where the module path's libtorch ops round them: what differs is only the order of
        // the reductions (norms, attention), which can move a value by one BF16 unit (2^-8 relative) and then propagate.
        // Measured: max 0.3-0.8 % of the scale, mean 1.1-2.7e-4; leaving out one rounding (the norm's) gives a mean of 5-7e-4.
        using var model = Make(2, true, 160, dtype: ScalarType.BFloat16);
        var prompt = new long[,] { { 0, 0, 5, 9, 11, 2 }, { 3, 1, 4, 1, 5, 9 } };
        var mask = new long[,] { { 0, 0, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1 } };
        AssertBf16StepsClose(model, prompt, mask);
    }

    [Fact]
    public void Bf16FusedStepTakesABatchWhereLibtorchHasNoBf16Instructions()
    {
        // without AVX512-BF16 or AMX every BF16 product goes to the kernel, and the fused step takes up to 64 rows
        bool native = SkinnyLinear.NativeBf16;
        try
        {
            SkinnyLinear.NativeBf16 = false;
            using var model = Make(2, true, 160, dtype: ScalarType.BFloat16);
            var prompt = new long[7, 6];
            var mask = new long[7, 6];
            for (int r = 0; r < 7; r++)
                for (int j = 0; j < 6; j++) { prompt[r, j] = (5 * r + 3 * j + 1) % 50; mask[r, j] = j >= r % 3 ? 1 : 0; }
            using (no_grad())
            using (var cache = model.NewCache(7, 8))
                Assert.True(LlamaDecodeStep.Applies(model, zeros([7, 1], ScalarType.Int64), cache, split: false));
            AssertBf16StepsClose(model, prompt, mask);
        }
        finally { SkinnyLinear.NativeBf16 = native; }
    }

    static void AssertBf16StepsClose(CausalLM model, long[,] prompt, long[,] mask)
    {
        var (fused, fusedCache) = Decode(model, prompt, mask, 9, fused: true);
        var (modules, moduleCache) = Decode(model, prompt, mask, 9, fused: false);
        for (int s = 0; s < fused.Count; s++)
        {
            Assert.Equal(ScalarType.BFloat16, fused[s].dtype);
            var f = fused[s].to_type(ScalarType.Float32);
            var m = modules[s].to_type(ScalarType.Float32);
            double scale = m.abs().max().item<float>();
            double max = (f - m).abs().max().item<float>(), mean = (f - m).abs().mean().item<float>();
            Assert.True(max <= 0.015 * scale && mean <= 4e-4 * scale, $"step {s}: BF16 fused vs module: max {max:g3}, mean {mean:g3}, scale {scale:g3}");
        }
        fusedCache.Dispose(); moduleCache.Dispose();
    }

    [Theory, MemberData(nameof(Shapes))]
    public void FusedStepEqualsTheModulePath(int kvHeads, bool bias, int hidden)
    {
        using var model = Make(kvHeads, bias, hidden);
        var prompt = new long[,] { { 0, 0, 5, 9, 11, 2 }, { 3, 1, 4, 1, 5, 9 }, { 0, 0, 0, 0, 0, 42 } };
        var mask = new long[,] { { 0, 0, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 0, 0, 1 } };
        var (fused, fusedCache) = Decode(model, prompt, mask, 9, fused: true);
        var (modules, moduleCache) = Decode(model, prompt, mask, 9, fused: false);
        for (int s = 0; s < fused.Count; s++)
        {
            double scale = modules[s].abs().max().item<float>(), diff = (fused[s] - modules[s]).abs().max().item<float>();
            Assert.True(diff <= 2e-6 * scale, $"step {s}: fused vs module hidden states differ by {diff:g3} (scale {scale:g3})");
        }
        // the cache holds the same keys and values (the fused step writes them itself)
        Assert.Equal(moduleCache.Length, fusedCache.Length);
        for (int l = 0; l < 3; l++)
        {
            var (fk, fv) = fusedCache.Layer(l);
            var (mk, mv) = moduleCache.Layer(l);
            int len = fusedCache.Length;
            Assert.True((fk.narrow(2, 0, len) - mk.narrow(2, 0, len)).abs().max().item<float>() <= 1e-5, $"layer {l}: keys differ");
            Assert.True((fv.narrow(2, 0, len) - mv.narrow(2, 0, len)).abs().max().item<float>() <= 1e-5, $"layer {l}: values differ");
        }
        fusedCache.Dispose(); moduleCache.Dispose();
    }

    [Fact]
    public void FusedStepActuallyRunsAndIsNotTheModulePath()
    {
        // guards the test above: with the fused step on, a decoding step's result is not the module path's bit for bit
        using var model = Make(2, true);
        var prompt = new long[,] { { 3, 1, 4, 1, 5, 9 } };
        var mask = new long[,] { { 1, 1, 1, 1, 1, 1 } };
        var (fused, _) = Decode(model, prompt, mask, 4, fused: true);
        var (modules, _) = Decode(model, prompt, mask, 4, fused: false);
        Assert.Contains(Enumerable.Range(0, 4), s => !fused[s].eq(modules[s]).all().item<bool>());
    }

    [Fact]
    public void ARowsStepDoesNotDependOnItsBatch()
    {
        // row 1 of a left-padded batch of two against the same sequence decoded alone: the same step, bit for bit
        using var model = Make(2, true);
        using var noGrad = no_grad();
        var prompt = new long[,] { { 0, 0, 5, 9, 11, 2 }, { 3, 1, 4, 1, 5, 9 } };
        using var cacheBoth = model.NewCache(2, 16);
        using var cacheOne = model.NewCache(1, 16);
        var mask = ones([2, 7], ScalarType.Int64);
        mask.narrow(1, 0, 6).copy_(tensor(new long[,] { { 0, 0, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1 } }));
        model.Forward(tensor(prompt), null, cacheBoth, mask.narrow(1, 0, 6));
        model.Forward(tensor(new long[,] { { 3, 1, 4, 1, 5, 9 } }), null, cacheOne);
        var both = model.Forward(tensor(new long[,] { { 17 }, { 23 } }), null, cacheBoth, mask);
        var one = model.Forward(tensor(new long[,] { { 23 } }), null, cacheOne);
        Assert.True(both[1].eq(one[0]).all().item<bool>(), "row 1's step differs from the same row decoded alone");
    }

    [Fact]
    public void UncoveredConfigurationsTakeTheModulePath()
    {
        var plain = ModelConfig.Llama(vocabSize: 101, hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 96, maxPositions: 64);
        Assert.True(LlamaDecodeStep.Supports(plain));
        Assert.False(LlamaDecodeStep.Supports(plain with { NormPlacement = NormPlacement.Sandwich }));
        Assert.False(LlamaDecodeStep.Supports(plain with { QkNorm = true }));
        Assert.False(LlamaDecodeStep.Supports(plain with { AttnLogitSoftcap = 50 }));
        Assert.False(LlamaDecodeStep.Supports(plain with { FusedProjections = true }));
        Assert.False(LlamaDecodeStep.Supports(plain with { HiddenAct = "gelu_pytorch_tanh" }));
        Assert.False(LlamaDecodeStep.Supports(plain with { NormPlusOne = true }));
        using var model = CausalLM.Create(plain, 1);
        using var noGrad = no_grad();
        using var cache = model.NewCache(1, 8);
        Assert.True(LlamaDecodeStep.Applies(model, zeros([1, 1], ScalarType.Int64), cache, split: false));
        Assert.False(LlamaDecodeStep.Applies(model, zeros([1, 2], ScalarType.Int64), cache, split: false));   // prefill
        Assert.False(LlamaDecodeStep.Applies(model, zeros([SkinnyLinear.MaxRows + 1, 1], ScalarType.Int64), cache, split: false));
        Assert.False(LlamaDecodeStep.Applies(model, zeros([1, 1], ScalarType.Int64), null, split: false));
        Assert.False(LlamaDecodeStep.Applies(model, zeros([1, 1], ScalarType.Int64), cache, split: true));
        using var bf16 = CausalLM.Create(plain, 1, ScalarType.BFloat16);
        Assert.True(LlamaDecodeStep.Applies(bf16, zeros([SkinnyLinear.MaxRowsBf16, 1], ScalarType.Int64), cache, split: false));
        Assert.False(LlamaDecodeStep.Applies(bf16, zeros([SkinnyLinear.MaxRowsBf16 + 1, 1], ScalarType.Int64), cache, split: false));
        using var f16 = CausalLM.Create(plain, 1, ScalarType.Float16);
        Assert.False(LlamaDecodeStep.Applies(f16, zeros([1, 1], ScalarType.Int64), cache, split: false));
    }

    [Fact]
    public void GreedyGenerationIsUnchangedOnARealisticShape()
    {
        // hidden 128, 8 heads of 16, GQA: the tokens generated with the fused step equal the module path's
        using var model = Make(2, false, hidden: 128, heads: 8, inter: 256, seed: 5);
        var gen = new TextGenerator(model, null);
        var options = new GenerationOptions { MaxNewTokens = 24, StopIds = [] };
        int[][] prompts = [[5, 9, 11], [3, 1, 4, 1, 5, 9, 2, 6]];
        LlamaDecodeStep.Enabled = false;
        IReadOnlyList<GenerationResult> reference;
        try { reference = gen.Generate(prompts, options); }
        finally { LlamaDecodeStep.Enabled = true; }
        var fused = gen.Generate(prompts, options);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(reference[i].TokenIds, fused[i].TokenIds);
    }
}
