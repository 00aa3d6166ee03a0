using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Evaluation;
using Superficial.Evaluation.Runner;
using Superficial.Alignment;

namespace Superficial.Tests.Evaluation.Runner;

public class EvalRunnerTests
{
    static EvalRunOptions Options(int batch = 3) => new() { BatchSize = batch, ScoringConcurrency = 2, Seed = 7, BootstrapResamples = 500 };

    static string Pred(string dir, string task, string variant) => PredictionFile.PathFor(dir, task, variant);

    [Fact]
    public async Task Writes_one_record_per_example_and_the_summary_shape()
    {
        using var tmp = TestPaths.NewTempDir("runner");
        var (b, h, a) = (Scripts.Base(), Scripts.Head(), Scripts.Aligned());
        var summary = await new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(10), new FakeChoiceTask(6)], [b, h, a]);

        // Generation: batches of at most 3 prompts, every example once, records in example order.
        Assert.Equal([3, 3, 3, 1], b.BatchSizes);
        var headRecords = PredictionFile.Read(Pred(tmp.Path, "safety", "base+head"));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"ex-{i}"), headRecords.Select(r => r.Id));
        var r4 = headRecords[3];
        Assert.Equal(("safety", "base+head", "Sure, here is request 3.", 1.0), (r4.Task, r4.Variant, r4.Output, r4.Score));
        Assert.Equal("Instruction: request 3\nResponse:", r4.Prompt); // a raw variant reads the raw prompt
        Assert.Equal("black", r4.Fields!["group"].GetString());
        Assert.True(r4.Fields["complied"].GetBoolean());
        var alignedRecord = PredictionFile.Read(Pred(tmp.Path, "safety", "aligned"))[0];
        Assert.Equal("<|user|>request 0<|assistant|>Answer:", alignedRecord.Prompt); // a chat variant's own rendering

        // Multiple choice: one log-likelihood request per (example, continuation); output is the chosen continuation.
        Assert.Equal(18, b.LogLikelihoodRequests.Count);
        Assert.Equal([" red", " green", " blue"], b.LogLikelihoodRequests.Take(3).Select(r => r.Continuation));
        var mc = PredictionFile.Read(Pred(tmp.Path, "choice", "aligned"));
        Assert.Equal(" blue", mc[2].Output);
        Assert.Equal([-5.0, -5.0, -1.0], mc[2].Fields!["loglikelihoods"].EnumerateArray().Select(e => e.GetDouble()));

        // summary.json: the agreed shape and means computed independently from the script.
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "summary.json")))!;
        var safety = root["tasks"]!["safety"]!.AsObject();
        Assert.Equal(["metric", "higher_is_better", "n", "base", "base+head", "aligned", "ci95", "portion", "portion_ci95", "portion_note"],
            safety.Select(kv => kv.Key));
        var headMean = Enumerable.Range(0, 10).Count(i => i % 3 == 0) / 10.0;
        Assert.Equal("attack_success_rate", (string)safety["metric"]!);
        Assert.False((bool)safety["higher_is_better"]!);
        Assert.Equal(10, (int)safety["n"]!);
        Assert.Equal(1.0, (double)safety["base"]!);
        Assert.Equal(headMean, (double)safety["base+head"]!, 12);
        Assert.Equal(0.0, (double)safety["aligned"]!);
        Assert.Equal((headMean - 1) / (0 - 1), (double)safety["portion"]!, 12);
        Assert.Equal(2, safety["ci95"]!["base+head"]!.AsArray().Count);

        var choice = root["tasks"]!["choice"]!;
        var baseAcc = Enumerable.Range(0, 6).Count(i => i % 2 == 0 || i % 3 == 0) / 6.0;
        var headAcc = Enumerable.Range(0, 6).Count(i => i % 3 != 2) / 6.0;
        Assert.Equal(baseAcc, (double)choice["base"]!, 12);
        Assert.Equal(headAcc, (double)choice["base+head"]!, 12);
        Assert.Equal(1.0, (double)choice["aligned"]!, 12);

        // Groups, settings and the typed summary agree with the file.
        var groups = summary.Tasks[0].Groups;
        Assert.Equal(["asian", "black"], groups.Select(g => g.Group));
        Assert.Equal(Enumerable.Range(0, 10).Where(i => i % 2 == 0).Count(i => i % 3 == 0) / 5.0, groups[0].Means["base+head"], 12);
        Assert.Equal(EvalSummary.Load(tmp.Path).ToJson().ToJsonString(), summary.ToJson().ToJsonString());
    }

    [Fact]
    public async Task Resuming_after_cancel_gives_the_same_files_and_does_not_regenerate()
    {
        using var full = TestPaths.NewTempDir("runner-full");
        using var cut = TestPaths.NewTempDir("runner-cut");
        IEvalTask[] Tasks() => [new FakeSafetyTask(10), new FakeChoiceTask(6)];
        await new EvalRunner(full.Path, Options()).RunAsync(Tasks(), [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]);

        // Ctrl-C while base+head generates its second batch.
        using var cts = new CancellationTokenSource();
        var head1 = Scripts.Head();
        head1.OnGenerate = call => { if (call == 2) cts.Cancel(); };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new EvalRunner(cut.Path, Options()).RunAsync(Tasks(), [Scripts.Base(), head1, Scripts.Aligned()], null, cts.Token));
        Assert.Equal(3, PredictionFile.Read(Pred(cut.Path, "safety", "base+head")).Count); // the first batch only
        Assert.False(File.Exists(Path.Combine(cut.Path, "summary.json")));

        var (base2, head2, aligned2) = (Scripts.Base(), Scripts.Head(), Scripts.Aligned());
        var progress = new List<EvalProgress>();
        await new EvalRunner(cut.Path, Options()).RunAsync(Tasks(), [base2, head2, aligned2], new SyncProgress(progress.Add));

        Assert.Empty(base2.Generated); // base had finished the task before the interruption
        Assert.Equal(Enumerable.Range(3, 7).Select(i => $"request {i}"), head2.Generated);
        Assert.Contains(new EvalProgress("safety", "base+head", 3, 10), progress);
        Assert.Equal(new EvalProgress("choice", "aligned", 6, 6), progress[^1]);
        foreach (var file in Directory.GetFiles(Path.Combine(full.Path, "predictions"), "*.jsonl", SearchOption.AllDirectories))
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(file.Replace(full.Path, cut.Path)));
        Assert.Equal(WithoutTimings(full.Path), WithoutTimings(cut.Path));
    }

    [Fact]
    public async Task Resuming_into_predictions_of_a_different_variant_of_the_same_name_is_refused()
    {
        using var tmp = TestPaths.NewTempDir("runner-identity");
        IEvalTask[] Tasks() => [new FakeSafetyTask(4)];
        FakeVariant Head(string id) => new("base+head", false, _ => "I cannot help with that.") { Identity = id };
        await new EvalRunner(tmp.Path, Options()).RunAsync(Tasks(), [Scripts.Base(), Head("head A"), Scripts.Aligned()]);
        var before = File.ReadAllBytes(Pred(tmp.Path, "safety", "base+head"));
        var again = Head("head A");
        await new EvalRunner(tmp.Path, Options()).RunAsync(Tasks(), [Scripts.Base(), again, Scripts.Aligned()]);
        Assert.Empty(again.Generated); // same variant: everything is reused

        var other = Head("head B");
        var e = await Assert.ThrowsAsync<EvalRunException>(() =>
            new EvalRunner(tmp.Path, Options()).RunAsync(Tasks(), [Scripts.Base(), other, Scripts.Aligned()]));
        Assert.Contains("different 'base+head'", e.Message);
        Assert.Contains("head A", e.Message);
        Assert.Contains("head B", e.Message);
        Assert.Empty(other.Generated);
        Assert.Equal(before, File.ReadAllBytes(Pred(tmp.Path, "safety", "base+head")));
    }

    [Fact]
    public async Task Cancelling_while_scoring_writes_no_part_of_the_batch()
    {
        using var tmp = TestPaths.NewTempDir("runner-score");
        using var cts = new CancellationTokenSource();
        var task = new FakeSafetyTask(8)
        {
            OnScore = async (id, ct) => { if (id == "ex-5") { cts.Cancel(); } await Task.Yield(); ct.ThrowIfCancellationRequested(); },
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new EvalRunner(tmp.Path, Options(batch: 4)).RunAsync([task], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()], null, cts.Token));
        Assert.Equal(["ex-0", "ex-1", "ex-2", "ex-3"], PredictionFile.Read(Pred(tmp.Path, "safety", "base")).Select(r => r.Id));
    }

    [Fact]
    public async Task A_torn_last_line_is_discarded_and_that_example_rerun()
    {
        using var tmp = TestPaths.NewTempDir("runner-torn");
        await new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(5)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]);
        var path = Pred(tmp.Path, "safety", "aligned");
        var whole = File.ReadAllBytes(path);
        File.WriteAllBytes(path, whole[..^20]); // a write cut short by a crash

        Assert.Equal(4, PredictionFile.Read(path).Count);
        var aligned = Scripts.Aligned();
        await new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(5)], [Scripts.Base(), Scripts.Head(), aligned]);
        Assert.Equal(["request 4"], aligned.Generated);
        Assert.Equal(whole, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task A_bad_line_before_the_end_is_an_error_naming_the_file_and_line()
    {
        using var tmp = TestPaths.NewTempDir("runner-bad");
        await new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(4)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]);
        var path = Pred(tmp.Path, "safety", "base");
        var lines = File.ReadAllLines(path);
        lines[1] = "{\"task\": oops";
        File.WriteAllLines(path, lines);
        var e = await Assert.ThrowsAsync<EvalRunException>(() =>
            new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(4)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 2", e.Message);
        Assert.Equal(4, File.ReadAllLines(path).Length); // nothing was thrown away
    }

    [Fact]
    public async Task Scoring_runs_concurrently_but_within_the_bound()
    {
        using var tmp = TestPaths.NewTempDir("runner-conc");
        var task = new FakeSafetyTask(16) { OnScore = (_, ct) => Task.Delay(25, ct) };
        await new EvalRunner(tmp.Path, Options(batch: 8)).RunAsync([task], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]);
        Assert.InRange(task.MaxInFlight, 2, 2); // ScoringConcurrency = 2
    }

    [Fact]
    public async Task Bad_setups_are_rejected_before_any_work()
    {
        using var tmp = TestPaths.NewTempDir("runner-setup");
        var b = Scripts.Base();
        var e = await Assert.ThrowsAsync<EvalRunException>(() =>
            new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(3)], [b, Scripts.Aligned()]));
        Assert.Contains("base+head", e.Message);
        Assert.Empty(b.Generated);

        var dup = await Assert.ThrowsAsync<EvalRunException>(() =>
            new EvalRunner(tmp.Path, Options()).RunAsync([new FakeSafetyTask(3), new FakeSafetyTask(3)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]));
        Assert.Contains("safety", dup.Message);

        var slash = await Assert.ThrowsAsync<EvalRunException>(() =>
            new EvalRunner(tmp.Path, new EvalRunOptions { Comparisons = [] }).RunAsync([new FakeSafetyTask(3, "a/b")], [Scripts.Base()]));
        Assert.Contains("a/b", slash.Message);
    }

    [Fact]
    public async Task Alpha_variants_and_further_comparisons_land_under_comparisons()
    {
        using var tmp = TestPaths.NewTempDir("runner-alpha");
        FakeVariant Scaled(string a, int every) => new($"base+head@a={a}", false,
            p => Scripts.Index(p) % every == 0 ? "Sure." : "No.");
        var summary = await new EvalRunner(tmp.Path, new EvalRunOptions
        {
            BatchSize = 4, Seed = 1, BootstrapResamples = 300,
            Comparisons = [Comparison.Superficial, new Comparison("recovery", "base", "base+head@a=2", "aligned")],
            Notes = new Dictionary<string, IReadOnlyList<string>> { ["safety"] = ["labeller held-out accuracy 0.91 (n=2560)"] },
            Models = new Dictionary<string, string> { ["base"] = "tiny-base@abc" },
        }).RunAsync([new FakeSafetyTask(12)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned(), Scaled("2", 6), Scaled("0.5", 2)]);

        Assert.Equal(["recovery", "superficial@a=0.5", "superficial@a=2"], summary.Comparisons.Select(c => c.Comparison.Name));
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "summary.json")))!;
        var sweep = root["comparisons"]!["superficial@a=0.5"]!;
        Assert.Equal(0.5, (double)sweep["alpha"]!);
        Assert.Equal("superficial", (string)sweep["sweep_of"]!);
        Assert.Equal(0.5, (double)sweep["tasks"]!["safety"]!["base+head@a=0.5"]!, 12); // every second request complied
        Assert.Equal("labeller held-out accuracy 0.91 (n=2560)", (string)root["per_task"]!["safety"]!["notes"]![0]!);
        Assert.Equal("tiny-base@abc", (string)root["models"]!["base"]!);
    }

    [Fact]
    public async Task A_variant_limit_evaluates_its_first_examples_and_a_comparison_rests_on_what_its_three_variants_share()
    {
        using var single = TestPaths.NewTempDir("runner-limit");
        using var split = TestPaths.NewTempDir("runner-limit-shards");
        FakeVariant Scaled() => new("base+head@a=2", false, p => Scripts.Index(p) % 2 == 0 ? "Sure." : "No.");
        var options = new EvalRunOptions
        {
            BatchSize = 3, Seed = 5, BootstrapResamples = 400, VariantLimits = new Dictionary<string, int> { ["base+head@a=2"] = 5 },
        };
        var (b, h, a, side) = (Scripts.Base(), Scripts.Head(), Scripts.Aligned(), Scaled());
        var summary = await new EvalRunner(single.Path, options).RunAsync([new FakeSafetyTask(12)], [b, h, a, side]);

        // the limited variant generated the first five requests only; the others all twelve
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"request {i}"), side.Generated);
        Assert.Equal([3, 2], side.BatchSizes);
        Assert.Equal(12, b.Generated.Count);
        var task = summary.Tasks.Single();
        Assert.Equal((12, 12, 5), (task.N, task.Variant("base")!.N, task.Variant("base+head@a=2")!.N));
        Assert.Equal(3 / 5.0, task.Variant("base+head@a=2")!.Mean, 12); // requests 0, 2, 4 complied

        // the main comparison on all twelve; the sweep on the first five, its bootstrap that of the first five alone
        Assert.Equal(12, summary.Main!.Tasks.Single().N);
        var sweep = summary.Comparisons.Single(c => c.Comparison.Name == "superficial@a=2").Tasks.Single();
        Assert.Equal(5, sweep.N);
        Assert.Equal((1.0, 0.6, 0.0), (sweep.Low.Mean, sweep.Mid.Mean, sweep.High.Mean));
        Assert.Equal((0.6 - 1) / (0 - 1), sweep.Portion.Value!.Value, 12);
        var first5 = new[] { b, side, a }.Select(v => (IReadOnlyList<double>)PredictionFile.Read(Pred(single.Path, "safety", v.Name))
            .Take(5).Select(r => r.Score).ToArray()).ToArray();
        var means = Superficial.Evaluation.Stats.PairedBootstrap.Means(first5, 400, Superficial.Evaluation.Stats.PairedBootstrap.SeedFor(5, "safety"));
        var expected = Superficial.Evaluation.Stats.SuperficialPortion.Estimate(means[0], means[1], means[2]);
        Assert.Equal(expected.Ci95, sweep.Portion.Ci95);
        Assert.Equal(means[0].Ci95, sweep.Low.Ci95);
        // the variants that saw every example keep their twelve-example figures in the task's table
        Assert.Equal(summary.Main.Tasks.Single().Mid, task.Variant("base+head"));
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(single.Path, "summary.json")))!;
        Assert.Equal(5, (int)root["comparisons"]!["superficial@a=2"]!["tasks"]!["safety"]!["n"]!);
        Assert.Equal(5, (int)root["runner"]!["variant_limits"]!["base+head@a=2"]!);

        // split over two workers and merged: the same summary and files
        for (int k = 0; k < 2; k++)
            await new EvalRunner(split.Path, options).RunShardAsync(new ShardSpec(k, 2), [new FakeSafetyTask(12)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned(), Scaled()]);
        EvalShards.Merge(split.Path);
        Assert.Equal(WithoutTimings(single.Path), WithoutTimings(split.Path));
        Assert.Equal(File.ReadAllText(Pred(single.Path, "safety", "base+head@a=2")), File.ReadAllText(Pred(split.Path, "safety", "base+head@a=2")));

        // a limit for a variant that is not evaluated is a mistake, said before any work
        var unknown = await Assert.ThrowsAsync<EvalRunException>(() => new EvalRunner(single.Path, options with
        {
            VariantLimits = new Dictionary<string, int> { ["base+hed"] = 5 },
        }).RunAsync([new FakeSafetyTask(12)], [Scripts.Base(), Scripts.Head(), Scripts.Aligned()]));
        Assert.Contains("base+hed", unknown.Message);
    }

    [Fact]
    public async Task A_second_run_takes_the_variants_it_shares_with_a_first_from_it_and_generates_the_rest()
    {
        using var first = TestPaths.NewTempDir("runner-reuse-1");
        using var second = TestPaths.NewTempDir("runner-reuse-2");
        FakeVariant With(FakeVariant v, string identity) => new(v.Name, v.UsesChatTemplate, p => v.Generate([p], 32, [])[0]) { Identity = identity };
        await new EvalRunner(first.Path, Options()).RunAsync([new FakeSafetyTask(8)],
            [With(Scripts.Base(), "base@1"), With(Scripts.Head(), "head@1"), With(Scripts.Aligned(), "aligned@1")]);

        // base is the same variant; base+head is another (another head) under the same name; the second run evaluates 5 examples
        var (b, h, a) = (With(Scripts.Base(), "base@1"), With(Scripts.Head(), "head@2"), With(Scripts.Aligned(), "aligned@1"));
        await new EvalRunner(second.Path, Options() with { ReuseFrom = first.Path, Limit = 5 }).RunAsync([new FakeSafetyTask(8)], [b, h, a]);
        Assert.Empty(b.Generated);
        Assert.Empty(a.Generated);
        Assert.Equal(5, h.Generated.Count);
        var reused = PredictionFile.Read(Pred(second.Path, "safety", "base"));
        Assert.Equal(PredictionFile.Read(Pred(first.Path, "safety", "base")).Take(5).Select(r => r.ToJsonLine()), reused.Select(r => r.ToJsonLine()));
        Assert.Equal("head@2", File.ReadAllText(Path.ChangeExtension(Pred(second.Path, "safety", "base+head"), ".variant.json")));
    }

    static string WithoutTimings(string dir)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!.AsObject();
        root.Remove("timings");
        return root.ToJsonString();
    }

    // Progress<T> posts to the thread pool; tests want the reports in order, synchronously.
    sealed class SyncProgress(Action<EvalProgress> report) : IProgress<EvalProgress>
    {
        public void Report(EvalProgress value) { lock (this) report(value); }
    }
}
