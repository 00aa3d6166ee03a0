using Superficial.Generation;
using Superficial.Tests.Cli;
using System.Text;
using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Evaluation.Judges;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Hardening;

/// <summary>Tiny models and one small extraction shared by the hardening tests (issue 14).</summary>
public sealed class HardeningFixture : IDisposable
{
    /// <summary>base, aligned and an unrelated third model, as the extraction tests use them.</summary>
    readonly Superficial.Tests.Alignment.ExtractionTests.Pair models = new();
    TempDir Root => models.Root;
    public string Base => models.Base;
    public string Aligned => models.Aligned;
    public string Other => models.Other;
    public string Extraction => Path.Combine(Root.Path, "ext");

    public HardeningFixture()
    {
        Superficial.Alignment.Extraction.Run(Base, Aligned, Prompts(6), "test", Extraction,
            new ExtractionOptions { TopK = 8, MaxNewTokens = 6, BatchSize = 3, ChunkSize = 3, HiddenF32 = true });
    }

    public static IReadOnlyList<ExtractionPrompt> Prompts(int n) => Enumerable.Range(0, n)
        .Select(i => new ExtractionPrompt($"p{i}", new PromptSpec($"Question {i}: the cat{new string('!', i % 3)}\nAnswer:", $"Question {i}: the cat"))).ToList();

    /// <summary>A copy of the base model folder whose config.json is changed by <paramref name="edit"/>.</summary>
    public string BaseWithConfig(string tag, Action<JsonObject> edit)
    {
        var dir = Path.Combine(Root.Path, tag);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(Base)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        edit(cfg);
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
        return dir;
    }

    public void Dispose() => models.Dispose();
}

/// <summary>
/// Regression tests for the failures an adversarial pass found (issue 14). Each ran against the code
/// before its fix and failed there; they use only what a user uses (the command, or long-standing APIs).
/// </summary>
public class HardeningTests(HardeningFixture fx) : IClassFixture<HardeningFixture>
{
    static ExtractionOptions Small(int batch = 2) => new() { TopK = 8, MaxNewTokens = 4, BatchSize = batch, ChunkSize = 4, HiddenF32 = true };

    // ---- 1. empty prompt ----

    [Fact]
    public void AnEmptyPromptIsRefusedTheSameWayAloneAndBatched()
    {
        using var tmp = TestPaths.NewTempDir("empty");
        var empty = new ExtractionPrompt("the-empty-one", new PromptSpec("", "", null));
        var longer = HardeningFixture.Prompts(1)[0];
        var alone = Assert.Throws<ArgumentException>(() =>
            Superficial.Alignment.Extraction.Run(fx.Base, fx.Aligned, [empty], "t", Path.Combine(tmp.Path, "alone"), Small()));
        var batched = Assert.Throws<ArgumentException>(() =>
            Superficial.Alignment.Extraction.Run(fx.Base, fx.Aligned, [longer, empty], "t", Path.Combine(tmp.Path, "batched"), Small()));
        Assert.Contains("the-empty-one", alone.Message);
        Assert.Equal(alone.Message, batched.Message);
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "batched", "chunks")) &&
                     Directory.EnumerateFiles(Path.Combine(tmp.Path, "batched", "chunks")).Any(), "nothing may be written for a refused prompt set");
    }

    [Fact]
    public void AOneTokenPromptGivesTheSameHiddenStatesBatchedAsAlone()
    {
        using var model = CausalLM.Load(fx.Base);
        int[] shortRaw = [7], longRaw = [5, 6, 7, 8, 9, 10, 11];
        int[] genShort = [20, 21, 22], genLong = [30, 31];
        var alone = Superficial.Alignment.Extraction.TeacherForcedHidden(model, [shortRaw], [genShort])[0];
        var batched = Superficial.Alignment.Extraction.TeacherForcedHidden(model, [longRaw, shortRaw], [genLong, genShort])[1];
        Assert.True((alone - batched).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void ExtractRefusesAnEmptyPromptLineByItsNumber()
    {
        using var tmp = TestPaths.NewTempDir("emptycli");
        var file = tmp.File("prompts.jsonl");
        File.WriteAllText(file, "{\"prompt\": \"Hello there\"}\n{\"prompt\": \"\"}\n");
        var r = Extract(file, tmp.File("out"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("prompts.jsonl:2", r.Output);
    }

    // ---- 2. identity covers every byte ----

    [Fact]
    public void ModelIdentityChangesWhenAnyWeightByteChanges()
    {
        using var tmp = TestPaths.NewTempDir("ident");
        File.WriteAllText(tmp.File("config.json"), "{\"model_type\": \"llama\"}");
        using (var t = arange(0, 1 << 20, ScalarType.Float32)) // 4 MiB: more than three 1 MiB samples cover
            SafeTensorsWriter.Write(tmp.File("model.safetensors"), [KeyValuePair.Create("w", t)]);
        var before = ModelIdentity.Of(tmp.Path);
        var bytes = File.ReadAllBytes(tmp.File("model.safetensors"));
        bytes[1_200_000] ^= 1; // between the start and middle samples
        File.WriteAllBytes(tmp.File("model.safetensors"), bytes);
        File.SetLastWriteTimeUtc(tmp.File("model.safetensors"), DateTime.UtcNow.AddSeconds(5));
        Assert.NotEqual(before, ModelIdentity.Of(tmp.Path));
    }

    [Fact]
    public void AModelFolderOfSymlinkedFilesLoadsAndHasTheSameIdentity()
    {
        using var tmp = TestPaths.NewTempDir("links");
        foreach (var f in Directory.GetFiles(fx.Base)) File.CreateSymbolicLink(tmp.File(Path.GetFileName(f)), f); // the HF cache's layout
        using (var real = CausalLM.Load(fx.Base))
        using (var linked = CausalLM.Load(tmp.Path))
            Assert.True(real.LmHeadWeight.eq(linked.LmHeadWeight).all().item<bool>());
        Assert.Equal(ModelIdentity.Of(fx.Base), ModelIdentity.Of(tmp.Path));
    }

    // ---- 3. train-head is reproducible across processes ----

    [Fact]
    public void TrainHeadWithTheSameSeedGivesByteIdenticalHeadsInTwoProcesses()
    {
        using var tmp = TestPaths.NewTempDir("seed");
        string[] Args(string name) => ["train-head", "--data", fx.Extraction, "--base", fx.Base, "--out", tmp.File(name),
            "--epochs", "2", "--batch", "5", "--seed", "7", "--lr", "0.01"];
        var a = CliProcess.Run(Args("a.safetensors"));
        var b = CliProcess.Run(Args("b.safetensors"));
        Assert.True(a.ExitCode == 0, a.ToString());
        Assert.True(b.ExitCode == 0, b.ToString());
        Assert.Equal(File.ReadAllBytes(tmp.File("a.safetensors")), File.ReadAllBytes(tmp.File("b.safetensors")));
    }

    // ---- 4. a head's base model is checked ----

    [Fact]
    public void AHeadIsRefusedOnAModelOtherThanItsBaseUnlessAllowed()
    {
        using var tmp = TestPaths.NewTempDir("headbase");
        var headPath = tmp.File("head.safetensors");
        using (var head = new SuperficialHead(zeros(32, 32), TinyModels.Vocab) { BaseModel = ModelIdentity.Of(fx.Base) })
            head.Save(headPath);
        string[] Gen(string model) => ["generate", "--model", model, "--prompt", "the cat", "--head", headPath, "--max-new-tokens", "2"];
        var own = CliProcess.Run(Gen(fx.Base));
        Assert.True(own.ExitCode == 0, own.ToString());
        var other = CliProcess.Run(Gen(fx.Other));
        Assert.True(other.ExitCode == 2, other.ToString());
        Assert.Contains("--allow-other-base", other.Output);
        var allowed = CliProcess.Run([.. Gen(fx.Other), "--allow-other-base"]);
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
    }

    // ---- 5. a torn first checkpoint does not block train-head ----

    [Fact]
    public void ATornFirstCheckpointIsSetAsideWithAWarningNamingIt()
    {
        using var tmp = TestPaths.NewTempDir("torn");
        var head = tmp.File("head.safetensors");
        Directory.CreateDirectory(head + ".ckpt.new");
        File.WriteAllText(Path.Combine(head + ".ckpt.new", "state.json"), "{\"epoch\": 1, \"best_ep");
        var r = CliProcess.Run("train-head", "--data", fx.Extraction, "--base", fx.Base, "--out", head, "--epochs", "1", "--batch", "8");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains(Path.Combine(head + ".ckpt.new", "state.json"), r.Output);
        Assert.True(File.Exists(head));
        // and the run after it resumes from the whole checkpoint it left
        var again = CliProcess.Run("train-head", "--data", fx.Extraction, "--base", fx.Base, "--out", head, "--epochs", "1", "--batch", "8");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("resumed", again.Output);
    }

    // ---- 6. malformed judge replies ----

    [Fact]
    public async Task EmptyChoicesAreRetriedThenAJudgeErrorNotACrash()
    {
        using var server = new Superficial.Tests.Evaluation.Judges.ScriptedJudgeServer(_ => new(200, "{\"id\":\"x\",\"choices\":[]}"));
        using var client = new OpenAiJudgeClient(new JudgeOptions
        {
            BaseUrl = server.BaseUrl, Model = "m", MaxAttempts = 3, InitialBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(2),
        });
        await Assert.ThrowsAsync<JudgeException>(() => client.AskAsync("item-1", "rate this", r => r));
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task AnUnreadableVerdictIsLoggedWithTheReplyText()
    {
        using var server = new Superficial.Tests.Evaluation.Judges.ScriptedJudgeServer(_ =>
            Superficial.Tests.Evaluation.Judges.ScriptedReply.Chat("I would rather not give a number here."));
        var log = new List<string>();
        using var client = new OpenAiJudgeClient(new JudgeOptions
        {
            BaseUrl = server.BaseUrl, Model = "m", MaxAttempts = 2, InitialBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(2),
        }, s => { lock (log) log.Add(s); });
        await Assert.ThrowsAsync<JudgeException>(() => client.AskAsync("item-1", "rate this", r => SafetyJudge.ParseScore(r) is int s ? s.ToString() : null));
        Assert.Contains(log, l => l.Contains("I would rather not give a number here."));
    }

    [Fact]
    public async Task AJudgeThatGivesNoVerdictForOneExampleDoesNotLoseTheOthers()
    {
        using var tmp = TestPaths.NewTempDir("unscored");
        var task = new Superficial.Tests.Evaluation.Runner.FakeSafetyTask(6)
        {
            OnScore = (id, _) => id == "ex-2" ? throw new JudgeException("Judge m gave no verdict for item ex-2 after 3 attempts: empty choices") : Task.CompletedTask,
        };
        var variant = new Superficial.Tests.Evaluation.Runner.FakeVariant("base", false, p => "Sure: " + p.Raw);
        var e = await Assert.ThrowsAsync<Superficial.Evaluation.Runner.EvalRunException>(() =>
            new Superficial.Evaluation.Runner.EvalRunner(tmp.Path, new() { BatchSize = 3, Comparisons = [] }).RunAsync([task], [variant]));
        Assert.Contains("ex-2", e.Message);
        var saved = Superficial.Evaluation.Runner.PredictionFile.Read(Superficial.Evaluation.Runner.PredictionFile.PathFor(tmp.Path, "safety", "base"));
        Assert.Equal(["ex-0", "ex-1", "ex-3", "ex-4", "ex-5"], saved.Select(r => r.Id).Order().ToArray());
    }

    // ---- 7. config.json against the checkpoint ----

    [Fact]
    public void ZeroLayersBesideLayerTensorsIsAnErrorListingThem()
    {
        var dir = fx.BaseWithConfig("layers0", c => c["num_hidden_layers"] = 0);
        var e = Assert.ThrowsAny<Exception>(() => { using var m = CausalLM.Load(dir); });
        Assert.Contains("model.layers.0.", e.Message);
    }

    [Fact]
    public void AbsurdSizesAreRefusedBeforeAnythingIsAllocated()
    {
        foreach (var (tag, field, value) in new[] { ("layers1e6", "num_hidden_layers", 1_000_000), ("hidden1e9", "hidden_size", 1_000_000_000) })
        {
            var dir = fx.BaseWithConfig(tag, c => { c[field] = value; if (field == "hidden_size") c["head_dim"] = 8; });
            var load = Task.Run(() => { using var m = CausalLM.Load(dir); });
            Assert.True(Finishes(load, 30), $"{field} = {value}: the load did not fail within 30 s");
            var e = Assert.ThrowsAny<Exception>(() => load.GetAwaiter().GetResult());
            Assert.Contains("config.json", e.Message);
        }
    }

    [Fact]
    public void ZeroHeadsInAConfigWithoutHeadDimNamesTheField()
    {
        foreach (var field in new[] { "num_attention_heads", "num_key_value_heads" })
        {
            var dir = fx.BaseWithConfig("heads0-" + field, c => { c.Remove("head_dim"); c[field] = 0; });
            var e = Assert.ThrowsAny<Exception>(() => ModelConfig.Load(Path.Combine(dir, "config.json")));
            Assert.Contains(field, e.Message);
        }
    }

    // ---- 8. catastrophic regex in a tokenizer file ----

    [Fact]
    public void ACatastrophicTokenizerRegexTimesOutWithAnErrorNamingTheFile()
    {
        using var tmp = TestPaths.NewTempDir("regex");
        TinyModels.WriteTokenizer(tmp.Path);
        var path = tmp.File("tokenizer.json");
        var tok = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        tok["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(a|aa)+b" }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
        };
        File.WriteAllText(path, tok.ToJsonString());
        var tokenizer = TextTokenizer.Load(tmp.Path);
        var encode = Task.Run(() => tokenizer.Encode(new string('a', 46) + "c", addSpecialTokens: false));
        Assert.True(Finishes(encode, 30), "encoding did not stop within 30 s");
        var e = Assert.ThrowsAny<Exception>(() => encode.GetAwaiter().GetResult());
        Assert.Contains("tokenizer.json", e.Message);
    }

    // ---- 9. prompt length against the context ----

    [Fact]
    public void APromptBeyondTheContextIsRefusedWithItsId()
    {
        using var tmp = TestPaths.NewTempDir("long");
        var prompts = new[] { HardeningFixture.Prompts(1)[0], new ExtractionPrompt("too-long", new PromptSpec(new string('x', 400), new string('x', 400), null)) };
        var e = Assert.ThrowsAny<Exception>(() => Superficial.Alignment.Extraction.Run(fx.Base, fx.Aligned, prompts, "t", tmp.Path, Small()));
        Assert.Contains("too-long", e.Message);
    }

    [Fact]
    public void GenerateRefusesAPromptLongerThanTheContext()
    {
        var r = CliProcess.Run("generate", "--model", fx.Base, "--prompt", new string('x', 400), "--max-new-tokens", "2");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("context", r.Output);
    }

    // ---- 10. prompt files ----

    [Fact]
    public void PromptFileErrorsNameTheFileAndLine()
    {
        using var tmp = TestPaths.NewTempDir("pfile");
        var dup = tmp.File("dup.jsonl");
        File.WriteAllText(dup, "{\"prompt\": \"a\"}\n{\"prompt\": \"a\", \"prompt\": \"b\"}\n");
        var r = Extract(dup, tmp.File("o1"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("dup.jsonl:2", r.Output);

        var bad = tmp.File("bad.jsonl");
        File.WriteAllBytes(bad, [.. Encoding.UTF8.GetBytes("{\"prompt\": \"fine\"}\n{\"prompt\": \"caf"), 0xE9, .. Encoding.UTF8.GetBytes("\"}\n")]);
        r = Extract(bad, tmp.File("o2"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("bad.jsonl:2", r.Output);
        Assert.Contains("UTF-8", r.Output);

        r = Extract(tmp.File("missing.jsonl"), tmp.File("o3"));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--prompts", r.Output);
        Assert.DoesNotContain("--data", r.Output);
    }

    // ---- 11. two workers creating the manifest at once ----

    [Fact]
    public async Task TwoWorkersWithDifferentSettingsStartingTogetherCannotBothProceed()
    {
        using var tmp = TestPaths.NewTempDir("race");
        var file = tmp.File("p.jsonl");
        File.WriteAllText(file, string.Concat(Enumerable.Range(0, 4).Select(i => $"{{\"prompt\": \"Question {i}: the cat\"}}\n")));
        var outDir = tmp.File("out");
        string[] Args(string k) => ["extract", "--base", fx.Base, "--aligned", fx.Aligned, "--prompts", file, "--out", outDir,
            "--top-k", k, "--max-new-tokens", "3", "--batch", "2", "--chunk", "2"];
        var runs = await Task.WhenAll(CliProcess.RunAsync(Args("5")), CliProcess.RunAsync(Args("6")));
        Assert.True(runs.Count(r => r.ExitCode == 0) == 1, string.Join("\n---\n", runs.Select(r => r.ToString())));
        var loser = runs.Single(r => r.ExitCode != 0);
        Assert.Contains("made with other settings: settings.top_k is", loser.Output); // only the field that differs
        var winnerK = runs[0].ExitCode == 0 ? 5 : 6;
        Assert.Equal(winnerK, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!["settings"]!["top_k"]!);
    }

    static bool Finishes(Task t, int seconds) => Task.WhenAny(t, Task.Delay(TimeSpan.FromSeconds(seconds))).GetAwaiter().GetResult() == t;

    CliResult Extract(string prompts, string outDir) => CliProcess.Run("extract", "--base", fx.Base, "--aligned", fx.Aligned,
        "--prompts", prompts, "--out", outDir, "--top-k", "8", "--max-new-tokens", "4", "--batch", "2", "--chunk", "4");
}
