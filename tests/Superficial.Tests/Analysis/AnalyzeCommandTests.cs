using System.Diagnostics;
using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Analysis;
using Superficial.Evaluation;
using Superficial.Evaluation.Runner;
using Superficial.Generation;
using Superficial.Tests.Evaluation.Runner;

namespace Superficial.Tests.Analysis;

/// <summary>train-head --seeds and analyze run as a user runs them (a process, exit code, output files); stability against eval's own portions.</summary>
public class AnalyzeCommandTests
{
    internal static (int Code, string Output) RunCli(params string[] args)
    {
        var r = Superficial.Tests.Cli.CliProcess.Run(args, timeoutSeconds: 240);
        return (r.ExitCode, r.Output);
    }

    [Fact]
    public void TrainHeadSeedsThenAnalyzeWritesEverySection()
    {
        using var tmp = TestPaths.NewTempDir("analyze");
        var baseDir = TinyModels.WriteModel(Path.Combine(tmp.Path, "base"), seed: 1);
        var aligned = TinyModels.WriteModel(Path.Combine(tmp.Path, "aligned"), seed: 2);
        var prompts = Enumerable.Range(0, 6).Select(i => new ExtractionPrompt($"p{i}", new PromptSpec($"Question {i}: the cat\nAnswer:", $"Question {i}: the cat"))).ToList();
        var ext = Path.Combine(tmp.Path, "ext");
        Extraction.Run(baseDir, aligned, prompts, "task tiny (extraction split)", ext,
            new ExtractionOptions { TopK = 8, MaxNewTokens = 12, BatchSize = 3, ChunkSize = 2, HiddenF32 = true });
        long positions = ExtractionData.Open([ext]).Positions;

        var head = Path.Combine(tmp.Path, "head.safetensors");
        var (code, output) = RunCli("train-head", "--data", ext, "--base", baseDir, "--out", head, "--epochs", "2", "--lr", "1e-2", "--batch", "16", "--seeds", "0,1");
        Assert.True(code == 0, output);
        var h0 = Path.Combine(tmp.Path, "head-s0.safetensors");
        var h1 = Path.Combine(tmp.Path, "head-s1.safetensors");
        Assert.True(File.Exists(h0) && File.Exists(h1), output);
        using (var a = SuperficialHead.Load(h0))
        using (var b = SuperficialHead.Load(h1))
        {
            Assert.Equal(1, (int)b.Info["settings"]!["init_seed"]!);
            Assert.Equal(0, (int)b.Info["settings"]!["seed"]!);   // one held-out split for every seed
            Assert.False(a.A!.allclose(b.A!), "another seed should give another head (data order)");
        }

        // --preset paper: the reference's settings, explicit options still win
        var paper = Path.Combine(tmp.Path, "paper.safetensors");
        (code, output) = RunCli("train-head", "--data", ext, "--base", baseDir, "--out", paper, "--preset", "paper", "--epochs", "1");
        Assert.True(code == 0, output);
        using (var p = SuperficialHead.Load(paper))
        {
            var st = p.Info["settings"]!;
            Assert.Equal(1e-5, (double)st["lr"]!);
            Assert.Equal("random", (string)st["init"]!);
            Assert.Equal(1000, (int)st["batch"]!);
            Assert.Equal(1, (int)st["epochs"]!);
            Assert.Equal("tail", (string)st["heldout_split"]!);
            Assert.Equal("last", (string)st["keep"]!);
        }
        Assert.Equal(2, RunCli("train-head", "--data", ext, "--base", baseDir, "--out", paper, "--preset", "reference").Code);

        var outDir = Path.Combine(tmp.Path, "analysis");
        (code, output) = RunCli("analyze", "--data", ext, "--base", baseDir, "--head", h0, h1, "--out", outDir, "--resamples", "200");
        Assert.True(code == 0, output);
        Assert.Contains("positions/s", output);
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "analysis.json")))!;
        Assert.Equal(positions, (long)root["throughput"]!["positions"]!);
        var shift = root["token_shift"]!["tasks"]![0]!;
        Assert.Equal("tiny", (string)shift["task"]!);
        double Sum(JsonNode c) => TokenShift.Names.Sum(n => (double)c[n]!["fraction"]!);
        Assert.Equal(1.0, Sum(shift["base"]!), 5);
        Assert.Equal(1.0, Sum(shift["head"]!), 5);
        Assert.Equal(positions, shift["by_position"]!.AsArray().Sum(b => (long)b!["n"]!));
        Assert.Equal(6, (int)root["depth"]!["tasks"]![0]!["responses"]!);
        Assert.Equal(32, root["anatomy"]!["singular_values"]!.AsArray().Count);
        Assert.Equal(2, root["heads"]!.AsArray().Count);
        // the first head on the common positions is the full-rank end of its ablation curve (the same positions)
        var full = root["anatomy"]!["ablation"]!.AsArray().Last()!;
        Assert.Equal(32, (int)full["rank"]!);
        Assert.Equal((double)full["kl"]!, (double)root["heads"]![0]!["common_kl"]!, 5);
        Assert.Equal((long)full["n"]!, (long)root["heads"]![0]!["common_n"]!);
        Assert.True((long)full["n"]! > 0);
        Assert.NotEmpty(root["tokens"]!["all"]!.AsArray());
        var html = File.ReadAllText(Path.Combine(outDir, "analysis.html"));
        Assert.Contains("Token shift", html);
        Assert.Contains("data:image/png;base64", html);
        Assert.True(File.Exists(Path.Combine(outDir, "analysis.md")));

        // the same inputs give the same analysis.json, throughput aside
        var again = Path.Combine(tmp.Path, "analysis2");
        Assert.Equal(0, RunCli("analyze", "--data", ext, "--base", baseDir, "--head", h0, h1, "--out", again, "--resamples", "200").Code);
        static string Stable(string dir)
        {
            var o = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "analysis.json")))!.AsObject();
            o.Remove("throughput"); o["inputs"]!.AsObject().Remove("data"); return o.ToJsonString();
        }
        Assert.Equal(Stable(outDir).Replace("analysis2", "analysis"), Stable(again).Replace("analysis2", "analysis"));

        // bad input: a clear error naming the folder, exit code 2, nothing written
        var missing = Path.Combine(tmp.Path, "nope");
        (code, output) = RunCli("analyze", "--data", missing, "--base", baseDir, "--out", Path.Combine(tmp.Path, "bad"));
        Assert.Equal(2, code);
        Assert.Contains("nope", output);
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "bad")));
    }

    [Fact]
    public async Task PortionsAcrossHeadsUseTheEvaluationsOwnBootstrap()
    {
        using var tmp = TestPaths.NewTempDir("stability");
        FakeVariant V(string name, bool chat, Func<int, bool> complies) =>
            new(name, chat, p => complies(int.Parse(p.User.Split(' ')[1])) ? "Sure, here" : "I cannot");
        var variants = new IModelVariant[]
        {
            V("base", false, _ => true), V("base+head", false, i => i % 3 == 0), V(Superficial.Evaluation.Experiment.HeadVariant(1), false, i => i % 4 == 0),
            V(Superficial.Evaluation.Experiment.HeadVariant(2), false, i => i % 5 == 0), V("aligned", true, i => i % 17 == 0),
        };
        var comparisons = new[] { Comparison.Superficial, new Comparison("superficial#2", "base", "base+head#2", "aligned"), new Comparison("superficial#3", "base", "base+head#3", "aligned") };
        var summary = await new EvalRunner(tmp.Path, new EvalRunOptions { Comparisons = comparisons, BootstrapResamples = 500, Seed = 3 })
            .RunAsync([new FakeSafetyTask(40)], variants);
        var heads = Enumerable.Range(0, 3).Select(i => new EvaluatedHead($"h{i}", Superficial.Evaluation.Experiment.HeadVariant(i), "full", i, null)).ToArray();
        var s = Assert.Single(StabilityAnalysis.FromEval(tmp.Path, heads));
        // every head's portion and interval are exactly the evaluation's (same paired resamples)
        var fromEval = new[] { summary.Main! }.Concat(summary.Comparisons).Select(c => c.Tasks[0].Portion).ToArray();
        Assert.Equal(fromEval, s.PerHead);
        var spread = s.Spread!;
        Assert.Equal(fromEval.Average(p => p.Value!.Value), spread.Mean, 12);
        Assert.True(spread.HeadSd > 0.05, $"heads differ: {spread.HeadSd}");
        Assert.True(spread.CombinedCi95.Width > spread.PromptCi95.Width);
        // the console table of the analyze command prints these rows (intervals contain brackets, which are markup)
        Superficial.Cli.Commands.AnalyzeCommand.Print(new JsonObject
        {
            ["token_shift"] = new JsonObject { ["tasks"] = new JsonArray() }, ["depth"] = new JsonObject { ["tasks"] = new JsonArray() },
            ["stability"] = AnalysisSummary.Stability([s]),
        });
        // a head that was not evaluated is named
        var e = Assert.Throws<InvalidDataException>(() => StabilityAnalysis.FromEval(tmp.Path, [.. heads, new EvaluatedHead("h3", Superficial.Evaluation.Experiment.HeadVariant(3), "full", 3, null)]));
        Assert.Contains("base+head#4", e.Message);
    }
}
