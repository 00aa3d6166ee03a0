using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Evaluation.Judges;
using Superficial.Evaluation.Runner;
using Superficial.Generation;
using Superficial.Models;

namespace Superficial.Tests.Hardening;

/// <summary>The options and library surface added by the hardening (issue 14): truncation, bounded replies, exclusive manifests, ids in errors.</summary>
public class HardeningApiTests(HardeningFixture fx) : IClassFixture<HardeningFixture>
{
    [Fact]
    public void TruncatePromptsKeepsTheLastTokensAndWarnsNamingThePrompt()
    {
        using var tmp = TestPaths.NewTempDir("trunc");
        var prompts = new[] { HardeningFixture.Prompts(1)[0], new ExtractionPrompt("too-long", new PromptSpec(new string('x', 400) + " the cat", "the cat " + new string('y', 400), null)) };
        var warnings = new List<string>();
        var summary = Superficial.Alignment.Extraction.Run(fx.Base, fx.Aligned, prompts, "t", tmp.Path,
            new ExtractionOptions { TopK = 8, MaxNewTokens = 4, BatchSize = 2, ChunkSize = 4, HiddenF32 = true, TruncatePrompts = true },
            log: warnings.Add);
        Assert.Equal(1, summary.ChunksDone);
        Assert.Contains(warnings, w => w.Contains("\"too-long\"") && w.Contains("base"));
        Assert.Contains(warnings, w => w.Contains("\"too-long\"") && w.Contains("aligned"));
        Assert.True((bool)JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "manifest.json")))!["settings"]!["truncate_prompts"]!);
    }

    [Fact]
    public void GenerationStopsAtTheEndOfTheContextBatchedAsAlone()
    {
        using var model = CausalLM.Load(fx.Base);
        var gen = new TextGenerator(model, null);
        var options = new GenerationOptions { MaxNewTokens = 50, StopIds = [] };
        var near = Enumerable.Range(0, model.Config.MaxPositions - 3).Select(i => 5 + i % 200).ToArray();
        var alone = gen.Generate([near], options)[0];
        Assert.Equal(3, alone.TokenIds.Count);
        Assert.Equal(FinishReason.Length, alone.Finish);
        var batched = gen.Generate([near, [5, 6, 7]], options);
        Assert.Equal(alone.TokenIds, batched[0].TokenIds);
        Assert.Equal(50, batched[1].TokenIds.Count);
        Assert.Throws<PromptTooLongException>(() => gen.Generate([Enumerable.Repeat(5, model.Config.MaxPositions).ToArray()], options));
    }

    [Fact]
    public async Task AnEvalPromptTooLongForTheModelNamesTheExample()
    {
        using var tmp = TestPaths.NewTempDir("evallong");
        var task = new Superficial.Tests.Evaluation.Runner.FakeSafetyTask(3);
        var variant = new Superficial.Tests.Evaluation.Runner.FakeVariant("base", false, p => p.Raw.Contains("request 1") ? throw new PromptTooLongException(0, 9999, 255, "too long") : "ok");
        // FakeVariant generates one prompt at a time, so index 0 is the example's index in its call; batch of 1 maps it exactly.
        var e = await Assert.ThrowsAsync<EvalRunException>(() => new EvalRunner(tmp.Path, new() { BatchSize = 1, Comparisons = [] }).RunAsync([task], [variant]));
        Assert.Contains("'ex-1'", e.Message);
        Assert.Contains("9999", e.Message);
    }

    [Fact]
    public async Task AnOversizedJudgeReplyIsNotReadIntoMemory()
    {
        var huge = new string('x', OpenAiJudgeClient.MaxReplyBytes + 1024);
        using var server = new Superficial.Tests.Evaluation.Judges.ScriptedJudgeServer(_ => Superficial.Tests.Evaluation.Judges.ScriptedReply.Chat(huge));
        using var client = new OpenAiJudgeClient(new JudgeOptions
        {
            BaseUrl = server.BaseUrl, Model = "m", MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(2),
        });
        var e = await Assert.ThrowsAsync<JudgeException>(() => client.AskAsync("big", "rate", r => r));
        Assert.Contains("larger than", e.Message);
        Assert.False(e.Fatal);
    }

    [Fact]
    public void AnUnauthorisedJudgeIsFatalAndNotRetried()
    {
        using var server = new Superficial.Tests.Evaluation.Judges.ScriptedJudgeServer(_ => new(401, "{\"error\": {\"message\": \"bad key\"}}"));
        using var client = new OpenAiJudgeClient(new JudgeOptions { BaseUrl = server.BaseUrl, Model = "m", MaxAttempts = 4, InitialBackoff = TimeSpan.FromMilliseconds(1) });
        var e = Assert.ThrowsAsync<JudgeException>(() => client.AskAsync("x", "rate", r => r)).GetAwaiter().GetResult();
        Assert.True(e.Fatal);
        Assert.Single(server.Requests);
        Assert.Contains("401", e.Message);
    }

    [Fact]
    public void ManifestCreationIsExclusiveUnderARace()
    {
        using var tmp = TestPaths.NewTempDir("manifest");
        int bothWon = 0;
        for (int trial = 0; trial < 200; trial++)
        {
            var dir = Path.Combine(tmp.Path, $"t{trial}");
            Directory.CreateDirectory(dir);
            using var start = new Barrier(2);
            var results = new bool[2];
            var threads = Enumerable.Range(0, 2).Select(w => new Thread(() =>
            {
                var m = new JsonObject { ["format"] = "superficial-extraction", ["worker"] = w, ["settings"] = new JsonObject { ["top_k"] = w } };
                start.SignalAndWait();
                try { Superficial.Alignment.Extraction.WriteOrCheckManifest(dir, m); results[w] = true; }
                catch (InvalidOperationException) { }
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            if (results.All(r => r)) bothWon++;
            Assert.True(results.Any(r => r), "one worker must win");
        }
        Assert.Equal(0, bothWon);
    }

    [Fact]
    public void AHeadKeepsTheBaseItWasTrainedOnAndRecoveryViaTheBaseChecksIt()
    {
        using var tmp = TestPaths.NewTempDir("recov");
        var path = tmp.File("head.safetensors");
        using (var h = new SuperficialHead(TorchSharp.torch.zeros(32, 32), TinyModels.Vocab) { BaseModel = ModelIdentity.Of(fx.Base) }) h.Save(path);
        using var compromised = CausalLM.Load(fx.Other);
        var tok = Superficial.Text.TextTokenizer.Load(fx.Other);
        // direct recovery applies the head to another model by design
        using (Steering.Build(compromised, tok, new SteeringRequest { RecoverWith = path })) { }
        using (Steering.Build(compromised, tok, new SteeringRequest { RecoverWith = path, ViaBase = fx.Base })) { }
        var e = Assert.Throws<HeadException>(() => Steering.Build(compromised, tok, new SteeringRequest { RecoverWith = path, ViaBase = fx.Aligned }));
        // the library names its parameter; the command line shows the flag
        Assert.Contains("`AllowOtherBase`", e.Message);
        Assert.Contains("recovery base (`ViaBase`)", e.Message);
        Assert.Contains("--allow-other-base", Superficial.Cli.FlagNames.Map(e.Message));
        Assert.Contains("recovery base (--via-base)", Superficial.Cli.FlagNames.Map(e.Message));
        Assert.Contains("head.safetensors", e.Message);
    }
}
