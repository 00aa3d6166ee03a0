using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>
/// BF16 on the CPU: a checkpoint stored in BF16 and run in BF16 reads its weights in place from the file (no F32
/// copy, no copy at all), computes in BF16, and stays within a documented tolerance of the F32 computation.
/// </summary>
public class Bf16Tests
{
    static string Fixture(string name) => Path.Combine(TestPaths.Fixtures, "reference", "models", name);

    static double MaxDiff(Tensor a, Tensor b) => (a.to_type(ScalarType.Float32) - b.to_type(ScalarType.Float32)).abs().max().item<float>();

    [Fact]
    public void Bf16CheckpointInBf16IsMappedNotCopied()
    {
        using var bf16 = CausalLM.Load(Fixture("llama-gqa-bf16"), ScalarType.BFloat16);
        using var f32 = CausalLM.Load(Fixture("llama-gqa-bf16"));
        long bytes = bf16.parameters().Sum(p => p.numel() * 2);
        Assert.Equal(ScalarType.BFloat16, bf16.DType);
        Assert.All(bf16.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Assert.Equal(bytes, bf16.MappedBytes);            // every weight reads the file in place
        Assert.Equal(0, f32.MappedBytes);                  // converted: copied once into F32 parameters
        var f = f32.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in bf16.named_parameters())
            Assert.True(f[n].equal(p.to_type(ScalarType.Float32)).all().item<bool>(), $"{n}: the mapped BF16 value differs from the copied one");
    }

    [Fact]
    public void WritingAMappedWeightNeverChangesTheFileAndTheModelOutlivesItsFolder()
    {
        var dir = Path.Combine(Path.GetTempPath(), "superficial-bf16-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(Fixture("llama-gqa-bf16"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var file = Path.Combine(dir, "model.safetensors");
        var before = File.ReadAllBytes(file);
        using var ids = tensor(new long[] { 1, 5, 9, 2, 7 }, [1, 5]);
        using var model = CausalLM.Load(dir, ScalarType.BFloat16);
        Assert.True(model.MappedBytes > 0);
        using var noGrad = no_grad();
        using var original = model.Logits(model.Forward(ids));
        foreach (var p in model.parameters()) p.mul_(1.5); // copy-on-write: private pages change, the file does not
        using var scaled = model.Logits(model.Forward(ids));
        Assert.False(scaled.equal(original).all().item<bool>());
        Assert.Equal(before, File.ReadAllBytes(file));
        Directory.Delete(dir, true);                        // the mapping keeps the deleted file's pages
        using var again = model.Logits(model.Forward(ids));
        Assert.True(again.equal(scaled).all().item<bool>());
    }

    /// <summary>
    /// The tolerance of BF16 against F32 on the same weights (the BF16 checkpoint, loaded once as BF16 and once as
    /// F32): logits within 2 % of the logits' range (BF16 keeps 8 significant bits, ~0.4 % per rounding, through
    /// every layer), and against transformers' F32 reference for that checkpoint likewise; the greedy tokens agree.
    /// </summary>
    [Fact]
    public void Bf16ComputeMatchesF32WithinTolerance()
    {
        const double Tolerance = 0.02;
        var dir = Fixture("llama-gqa-bf16");
        using var bf16 = CausalLM.Load(dir, ScalarType.BFloat16);
        using var f32 = CausalLM.Load(dir);
        using var reference = SafeTensorsFile.Open(Path.Combine(dir, "reference.safetensors"));
        using var ids = reference.Load("input_ids", ScalarType.Int64).unsqueeze(0);
        using var refLogits = reference.Load("logits");
        using var noGrad = no_grad();
        using var a = f32.Logits(f32.Forward(ids))[0];
        using var b = bf16.Logits(bf16.Forward(ids))[0];
        double range = a.abs().max().item<float>();
        Assert.True(MaxDiff(a, refLogits) <= 1e-4);      // F32 is transformers' computation
        Assert.True(MaxDiff(b, a) <= Tolerance * range, $"BF16 vs F32 logits: max diff {MaxDiff(b, a):g3}, range {range:g3}");
        Assert.True(MaxDiff(b, refLogits) <= Tolerance * range, $"BF16 vs transformers' F32: max diff {MaxDiff(b, refLogits):g3}");
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        var prompt = reference.Load("greedy_prompt", ScalarType.Int64).data<long>().Select(x => (int)x).ToArray();
        var expected = reference.Load("greedy_ids", ScalarType.Int64).data<long>().Select(x => (int)x).ToArray();
        var greedy = new TextGenerator(bf16, null).Generate([prompt], new GenerationOptions { MaxNewTokens = expected.Length, StopIds = [] })[0];
        Assert.Equal(expected, greedy.TokenIds);
    }
}
