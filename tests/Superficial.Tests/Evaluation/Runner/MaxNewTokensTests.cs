using System.Text.Json.Nodes;
using Superficial.Evaluation;
using Superficial.Evaluation.Runner;

namespace Superficial.Tests.Evaluation.Runner;

/// <summary>eval --max-new-tokens: generation tasks generate at most N tokens, recorded, and capped predictions are not mixed with uncapped ones.</summary>
public class MaxNewTokensTests
{
    static EvalRunOptions Options(int? cap) => new() { BatchSize = 4, Seed = 1, BootstrapResamples = 100, MaxNewTokens = cap };
    static FakeVariant Variant(string name) => new(name, false, p => $"Sure, here is {p.User}.") { Identity = new JsonObject { ["model"] = name }.ToJsonString() };

    [Fact]
    public async Task TheCapShortensGenerationIsRecordedAndKeepsCappedPredictionsApart()
    {
        using var tmp = TestPaths.NewTempDir("maxnew");
        var (b, h, a) = (Variant("base"), Variant("base+head"), Variant("aligned"));
        await new EvalRunner(tmp.Path, Options(5)).RunAsync([new FakeSafetyTask(6)], [b, h, a]);
        Assert.Equal([5, 5], b.MaxNewTokens);                       // the task's own budget is 32
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "summary.json")))!;
        Assert.Equal(5, (int)summary["runner"]!["max_new_tokens"]!);
        var identity = JsonNode.Parse(File.ReadAllText(Path.ChangeExtension(PredictionFile.PathFor(tmp.Path, "safety", "base"), ".variant.json")))!;
        Assert.Equal(5, (int)identity["max_new_tokens"]!);

        // the same folder without the cap (or with another) would mix short and full answers: refused, naming the file
        var e = await Assert.ThrowsAsync<EvalRunException>(() => new EvalRunner(tmp.Path, Options(null)).RunAsync([new FakeSafetyTask(6)], [Variant("base"), Variant("base+head"), Variant("aligned")]));
        Assert.Contains("different 'base'", e.Message);

        // a cap above the task's budget changes nothing: the task's 32, and the identity of an uncapped run
        using var tmp2 = TestPaths.NewTempDir("maxnew2");
        var b2 = Variant("base");
        await new EvalRunner(tmp2.Path, Options(100)).RunAsync([new FakeSafetyTask(2)], [b2, Variant("base+head"), Variant("aligned")]);
        Assert.Equal([32], b2.MaxNewTokens);
        Assert.Equal(b2.Identity, File.ReadAllText(Path.ChangeExtension(PredictionFile.PathFor(tmp2.Path, "safety", "base"), ".variant.json")));
        await Assert.ThrowsAsync<EvalRunException>(() => new EvalRunner(tmp2.Path, Options(0)).RunAsync([new FakeSafetyTask(2)], [b2]));
    }
}
