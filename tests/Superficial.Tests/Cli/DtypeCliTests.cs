using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Cli;

/// <summary>--dtype as a user runs it: on every command that runs a model, and BF16 end to end through `forward`.</summary>
public class DtypeCliTests
{
    [Fact]
    public async Task EveryCommandThatRunsAModelTakesDtype()
    {
        string[] commands = ["extract", "eval", "generate", "forward", "serve", "analyze"];
        var runs = commands.Select(c => CliProcess.RunAsync([c, "--help"])).ToArray();
        for (int i = 0; i < commands.Length; i++)
        {
            var r = await runs[i];
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("--dtype", r.Stdout);
        }
    }

    [Fact]
    public void ForwardInBf16IsWithinTheBf16ToleranceOfF32()
    {
        var model = Path.Combine(TestPaths.Fixtures, "reference", "models", "llama-gqa-bf16");
        var dir = Path.Combine(Path.GetTempPath(), "superficial-dtype-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var results = new Dictionary<string, Tensor>();
            foreach (var dtype in new[] { "float32", "bfloat16" })
            {
                var outFile = Path.Combine(dir, dtype + ".safetensors");
                CliProcess.Ok("forward", "--model", model, "--ids", "1,5,9,2,7,11", "--dtype", dtype, "--out", outFile);
                using var f = SafeTensorsFile.Open(outFile);
                results[dtype] = f.Load("logits");
            }
            var (a, b) = (results["float32"], results["bfloat16"]);
            double range = a.abs().max().item<float>(), diff = (a - b).abs().max().item<float>();
            Assert.True(diff > 0, "BF16 gave exactly the F32 logits: it did not compute in BF16");
            Assert.True(diff <= 0.02 * range, $"BF16 vs F32 logits max diff {diff:g3} exceeds 2 % of the range {range:g3}");
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>--device with several devices, as a user runs it.</summary>
public class SplitDeviceCliTests
{
    [Fact]
    public void ForwardSplitAcrossTwoCpuStagesWritesTheSingleDeviceLogits_AndCudaIsRefusedOnTheCpuBuild()
    {
        var model = Path.Combine(TestPaths.Fixtures, "reference", "models", "llama-gqa");
        var dir = Path.Combine(Path.GetTempPath(), "superficial-split-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var logits = new List<Tensor>();
            foreach (var device in new[] { "cpu", "cpu,cpu" })
            {
                var outFile = Path.Combine(dir, device.Replace(',', '-') + ".safetensors");
                CliProcess.Ok("forward", "--model", model, "--ids", "1,5,9,2,7,11", "--device", device, "--out", outFile);
                using var f = SafeTensorsFile.Open(outFile);
                logits.Add(f.Load("logits"));
            }
            Assert.True(logits[0].equal(logits[1]).all().item<bool>(), "--device cpu,cpu gave other logits than --device cpu");
            var r = CliProcess.Run("forward", "--model", model, "--ids", "1,5", "--device", "cuda:0,cuda:1", "--out", Path.Combine(dir, "x.safetensors"));
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("no CUDA", r.Output);
        }
        finally { Directory.Delete(dir, true); }
    }
}
