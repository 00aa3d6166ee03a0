using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>
/// A model loaded for inference in F32 on the CPU keeps its linear weights and its (tied) LM head column-major, where
/// libtorch decodes faster; this must change nothing a user sees but float rounding: the same values, the same greedy
/// tokens, the same saved bytes. Loading for training keeps the stored layout, read in place.
/// </summary>
public class WeightLayoutTests
{
    static string Fixture(string name) => Path.Combine(TestPaths.Fixtures, "reference", "models", name);

    static bool ColumnMajor(Tensor w) => w.dim() == 2 && w.stride(0) == 1 && w.stride(1) == w.shape[0];

    [Theory]
    [InlineData("llama-gqa")]              // untied head
    [InlineData("llama-tied-llama3rope")]  // the head is the embedding
    [InlineData("gpt2")]                   // Conv1D weights are [in, out] already; only the tied head changes
    public void InferenceLoadIsColumnMajorWithTheSameValues(string name)
    {
        using var inference = CausalLM.Load(Fixture(name));
        using var training = CausalLM.Load(Fixture(name), forTraining: true);
        Assert.True(ColumnMajor(inference.LmHeadWeight), "the LM head should be column-major");
        Assert.True(training.LmHeadWeight.is_contiguous(), "loading for training keeps the stored row-major layout");
        Assert.Equal(training.parameters().Sum(p => p.numel() * 4), training.MappedBytes);   // and reads every weight in place
        Assert.True(inference.MappedBytes < training.MappedBytes);
        var t = training.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in inference.named_parameters())
        {
            Assert.True(t[n].equal(p).all().item<bool>(), $"{name}: {n} differs between the two layouts");
            bool conv1d = name == "gpt2" && n.Contains(".h.") && p.dim() == 2;   // [in, out] stored, x W as it is
            if (conv1d) Assert.True(p.is_contiguous(), $"{name}: {n} should stay as stored");
            else if (n.EndsWith("_proj.weight") || n.EndsWith("lm_head.weight")) Assert.True(ColumnMajor(p), $"{name}: {n} should be column-major");
            if (p.dim() == 1) Assert.True(p.is_contiguous());
        }
    }

    [Fact]
    public void ColumnMajorDecodingGivesTheSameLogitsAndTokensAsRowMajor()
    {
        using var inference = CausalLM.Load(Fixture("llama-tied-llama3rope"));
        using var training = CausalLM.Load(Fixture("llama-tied-llama3rope"), forTraining: true);
        using var noGrad = no_grad();
        // a left-padded batch of 3 and each row alone: prefill, then greedy decoding with the KV cache
        var prompts = new[] { new[] { 1, 5, 9, 2, 7, 11 }, new[] { 3, 4 }, new[] { 8, 6, 10, 12 } };
        foreach (var rows in new[] { prompts, prompts.Take(1).ToArray(), prompts.Skip(1).Take(1).ToArray() })
        {
            var a = Greedy(inference, rows, 12);
            var b = Greedy(training, rows, 12);
            Assert.Equal(b.Tokens, a.Tokens);
            Assert.True(a.MaxLogitDiff(b) < 1e-4, $"logits differ by {a.MaxLogitDiff(b)}");
        }
    }

    sealed record Decoded(List<long[]> Tokens, List<Tensor> Logits)
    {
        public double MaxLogitDiff(Decoded o) => Logits.Zip(o.Logits, (x, y) => (x - y).abs().max().item<float>()).Max();
    }

    static Decoded Greedy(CausalLM model, int[][] prompts, int steps)
    {
        var batch = PaddedBatch.Left(prompts.Select(p => (IReadOnlyList<int>)p).ToList(), 0, CPU);
        using var cache = model.NewCache(prompts.Length, 4);
        var mask = batch.Mask;
        var logits = model.Logits(model.Forward(batch.Ids, batch.Positions, cache, mask))[.., -1];
        var pos = batch.Positions[.., -1] + 1;
        var tokens = new List<long[]>();
        var all = new List<Tensor> { logits.detach().clone() };
        for (int s = 0; s < steps; s++)
        {
            var next = logits.argmax(-1);
            tokens.Add(next.data<long>().ToArray());
            mask = cat([mask, ones_like(mask[.., ..1])], 1);
            logits = model.Logits(model.Forward(next.unsqueeze(1), pos.unsqueeze(1), cache, mask))[.., -1];
            all.Add(logits.detach().clone());
            pos = pos + 1;
        }
        return new Decoded(tokens, all);
    }

    [Fact]
    public void SavingAColumnMajorModelWritesTheStoredBytes()
    {
        using var tmp = TestPaths.NewTempDir("layout");
        using (var model = CausalLM.Load(Fixture("llama-gqa"))) model.SaveHf(tmp.Path);
        using var saved = CausalLM.Load(tmp.Path, forTraining: true);
        using var original = CausalLM.Load(Fixture("llama-gqa"), forTraining: true);
        var o = original.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in saved.named_parameters())
            Assert.True(o[n].equal(p).all().item<bool>(), $"{n} changed on the way through a column-major model");
    }

    [Fact]
    public void Bf16StaysRowMajorAndMapped()
    {
        using var bf16 = CausalLM.Load(Fixture("llama-gqa-bf16"), ScalarType.BFloat16);
        Assert.All(bf16.parameters(), p => Assert.True(p.is_contiguous()));
        Assert.Equal(bf16.parameters().Sum(p => p.numel() * 2), bf16.MappedBytes);
    }
}
