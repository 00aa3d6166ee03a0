using System.Diagnostics;
using System.Text.Json.Nodes;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Cli;

/// <summary>
/// inspect and forward run as a user runs them (a process, its exit code, its output) on the new families:
/// inspect names the family features and refuses, naming the field, a config it cannot honour.
/// </summary>
public class FamilyCliTests
{
    static (int Code, string Output) RunCli(params string[] args)
    {
        var r = CliProcess.Run(args, timeoutSeconds: 120);
        return (r.ExitCode, r.Output);
    }

    static string Dir(string name) => Path.Combine(TestPaths.Fixtures, "reference", "models", name);

    [Fact]
    public void InspectReportsGemma2FeaturesAndForwardMatchesTransformers()
    {
        var (code, output) = RunCli("inspect", "--model", Dir("gemma2"));
        Assert.True(code == 0, output);
        // the table wraps long rows: read it as one line of words
        var text = System.Text.RegularExpressions.Regex.Replace(output.Replace("│", " "), @"\s+", " ");
        foreach (var expected in new[] { "sliding window 8 on layers 0,2", "attention soft-cap 1.5", "final logit soft-cap 1",
                     "attention scale 24^-1/2", "RMSNorm x(1 + w)", "norms before and after each sub-layer", "GeGLU (gelu_pytorch_tanh)" })
            Assert.Contains(expected, text);

        using var tmp = TestPaths.NewTempDir("forward");
        using var reference = SafeTensorsFile.Open(Path.Combine(Dir("gemma2"), "reference.safetensors"));
        var ids = string.Join(",", reference.Load("input_ids", ScalarType.Int64).data<long>().ToArray());
        (code, output) = RunCli("forward", "--model", Dir("gemma2"), "--ids", ids, "--out", tmp.File("out.safetensors"));
        Assert.True(code == 0, output);
        using var ours = SafeTensorsFile.Open(tmp.File("out.safetensors"));
        Assert.True((ours.Load("logits") - reference.Load("logits")).abs().max().item<float>() < 1e-4);
    }

    [Theory]
    [InlineData("partial_rotary_factor", 0.5)]
    [InlineData("clip_qkv", 8.0)]
    public void InspectRefusesAConfigItCannotHonourNamingTheField(string field, double value)
    {
        using var tmp = TestPaths.NewTempDir("refuse");
        foreach (var f in Directory.GetFiles(Dir("olmo2"))) File.Copy(f, Path.Combine(tmp.Path, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(tmp.File("config.json")))!.AsObject();
        config[field] = value;
        File.WriteAllText(tmp.File("config.json"), config.ToJsonString());
        var (code, output) = RunCli("inspect", "--model", tmp.Path);
        Assert.Equal(2, code);
        Assert.Contains($"\"{field}\"", output);
    }
}
