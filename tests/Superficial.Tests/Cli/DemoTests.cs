using System.Text.Json.Nodes;
using Superficial.Cli.Commands;
using Superficial.Organism;
using Superficial.Tests.Organism;

namespace Superficial.Tests.Cli;

/// <summary>The README's first command end to end on the tiny organism: extraction, head, evaluation, report.</summary>
[Collection("tiny organism")]
public class DemoTests(TinyOrganism organism)
{
    [Fact]
    public void DemoRunsEndToEndAndTheHeadMovesSafetyTowardsTheAlignedModel()
    {
        using var tmp = TestPaths.NewTempDir("demo");
        DemoCommand.Run(OrganismSize.Tiny, tmp.Path, 0, organism.Folder, CancellationToken.None);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "eval", "summary.json")))!;
        var safety = summary["tasks"]!["organism-safety"]!;
        double b = (double)safety["base"]!, h = (double)safety["base+head"]!, a = (double)safety["aligned"]!;
        Assert.True(a < b, $"aligned ASR {a} should be below base {b}");
        Assert.True(h < b, $"base+head ASR {h} should be below base {b}: the head carries refusals");
        Assert.NotNull(summary["comparisons"]);
        var html = File.ReadAllText(Path.Combine(tmp.Path, "eval", "report.html"));
        Assert.Contains("organism-safety", html);
        Assert.Contains("data:image/png;base64", html);
        Assert.True(File.Exists(Path.Combine(tmp.Path, "head.safetensors")));
        // the recovery curve: every compromised model of the organism, and its section at the end of the report
        var curve = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "recovery", "recovery.json")))!;
        Assert.Equal(organism.Description.Compromises.Select(c => c.Model), curve["compromises"]!.AsArray().Select(c => (string)c!["model"]!));
        var asr = curve["tasks"]!["organism-safety"]!["series"]!["compromised"]!.AsArray();
        Assert.Equal(organism.Description.Compromises.Count, asr.Count);
        Assert.True((double)asr[^2]!["mean"]! > (double)asr[0]!["mean"]!, "the strongest attack succeeds more often than the weakest");
        Assert.Contains("Recovery against the strength of the compromise", html);
        // the evaluations ran as one worker in this process (threads driving libtorch beside each other are not safe
        // with TorchSharp 0.107, see DemoCommand.OneTorchThread), and the curve took the models the main evaluation ran
        // from it: the aligned model's safety answers are its records
        Assert.Equal(DemoCommand.EvalBatch, (int)summary["runner"]!["batch_size"]!);
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "eval", "shards")));
        string Answers(string run) => File.ReadAllText(Path.Combine(tmp.Path, run, "predictions", "organism-safety", "aligned.jsonl"));
        Assert.Equal(Answers("eval"), Answers("recovery"));
        // a second run resumes everything and changes nothing
        var before = File.ReadAllBytes(Path.Combine(tmp.Path, "head.safetensors"));
        var portions = summary["tasks"]!.ToJsonString();
        DemoCommand.Run(OrganismSize.Tiny, tmp.Path, 0, organism.Folder, CancellationToken.None);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(tmp.Path, "head.safetensors")));
        Assert.Equal(portions, JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "eval", "summary.json")))!["tasks"]!.ToJsonString());
    }
}
