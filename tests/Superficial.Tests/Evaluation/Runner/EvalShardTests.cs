using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Evaluation.Runner;

namespace Superficial.Tests.Evaluation.Runner;

/// <summary>An evaluation split over workers (RunShardAsync) and merged (EvalShards.Merge) gives what a single run gives.</summary>
public class EvalShardTests
{
    static EvalRunOptions Options(int? limit = null) => new()
    {
        BatchSize = 3, ScoringConcurrency = 2, Seed = 7, BootstrapResamples = 400, Limit = limit,
        Settings = new Dictionary<string, JsonNode?> { ["command_line"] = "superficial eval", ["date"] = "2026-12-01T00:00:00Z", ["dtype"] = "float32" },
        Notes = new Dictionary<string, IReadOnlyList<string>> { ["safety"] = ["a note"] },
    };

    static IReadOnlyList<IEvalTask> Tasks() => [new FakeSafetyTask(10), new FakeChoiceTask(7)];

    static FakeVariant[] Variants() => [Scripts.Base(), Scripts.Head(), Scripts.Aligned()];

    // everything but the time it took
    static string Comparable(string summaryJson)
    {
        var o = JsonNode.Parse(summaryJson)!.AsObject();
        o.Remove("timings");
        return o.ToJsonString();
    }

    static IEnumerable<string> Files(string dir, string sub) =>
        Directory.GetFiles(Path.Combine(dir, sub), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order();

    [Fact]
    public async Task Three_shards_merge_into_the_single_runs_predictions_and_summary_and_see_the_same_batches()
    {
        using var single = TestPaths.NewTempDir("shards-single");
        using var split = TestPaths.NewTempDir("shards-split");
        var one = Variants();
        await new EvalRunner(single.Path, Options()).RunAsync(Tasks(), one);

        var workers = Enumerable.Range(0, 3).Select(_ => Variants()).ToArray();
        for (int k = 2; k >= 0; k--) // in any order
        {
            var shard = await new EvalRunner(split.Path, Options()).RunShardAsync(new ShardSpec(k, 3), Tasks(), workers[k]);
            Assert.Equal(new ShardSpec(k, 3), shard.Shard);
        }
        Assert.False(File.Exists(Path.Combine(split.Path, EvalSummary.FileName))); // a worker writes no summary
        // batches of 3 dealt round-robin: worker 0 has batches 0 and 3 (examples 0-2, 9), worker 1 batch 1, worker 2 batch 2
        Assert.Equal([3, 1], workers[0][0].BatchSizes);
        Assert.Equal([3], workers[1][0].BatchSizes);
        Assert.Equal(["request 6", "request 7", "request 8"], workers[2][0].Generated);
        // every batch a worker ran is one the single run ran
        var singleBatches = one[1].Generated.Chunk(3).Select(b => string.Join("|", b)).ToHashSet();
        foreach (var w in workers)
            foreach (var b in w[1].Generated.Chunk(3)) Assert.Contains(string.Join("|", b), singleBatches);

        var merged = EvalShards.Merge(split.Path);
        Assert.Equal(["0/3", "1/3", "2/3"], merged.Shards.Select(s => s.Shard));
        Assert.Equal(Comparable(File.ReadAllText(Path.Combine(single.Path, EvalSummary.FileName))),
            Comparable(File.ReadAllText(Path.Combine(split.Path, EvalSummary.FileName))));
        Assert.Equal(Files(single.Path, "predictions"), Files(split.Path, "predictions"));
        foreach (var f in Files(single.Path, "predictions"))
            Assert.Equal(File.ReadAllText(Path.Combine(single.Path, f)), File.ReadAllText(Path.Combine(split.Path, f)));
        // the merged timings add up the workers'
        var timing = merged.Timings.Single(t => t.Task == "safety" && t.Variant == "base");
        Assert.Equal(10, timing.ExamplesRun);

        // merging again gives the same files
        var before = File.ReadAllText(Path.Combine(split.Path, "predictions", "choice", "aligned.jsonl"));
        EvalShards.Merge(split.Path);
        Assert.Equal(before, File.ReadAllText(Path.Combine(split.Path, "predictions", "choice", "aligned.jsonl")));
    }

    [Fact]
    public async Task Merge_waits_for_every_shard_refuses_shards_of_different_runs_and_resumes_a_shard()
    {
        using var dir = TestPaths.NewTempDir("shards-errors");
        var none = Assert.Throws<EvalRunException>(() => EvalShards.Merge(dir.Path));
        Assert.Contains("no evaluation shards", none.Message);

        await new EvalRunner(dir.Path, Options()).RunShardAsync(new ShardSpec(1, 2), Tasks(), Variants());
        var early = Assert.Throws<EvalRunException>(() => EvalShards.Merge(dir.Path));
        Assert.Contains("shard(s) 0/2", early.Message);
        Assert.Contains("resume", early.Message);
        Assert.False(File.Exists(Path.Combine(dir.Path, EvalSummary.FileName)));

        // shard 0 run with another limit: not the same run
        await new EvalRunner(dir.Path, Options(limit: 4)).RunShardAsync(new ShardSpec(0, 2), Tasks(), Variants());
        var other = Assert.Throws<EvalRunException>(() => EvalShards.Merge(dir.Path));
        Assert.Contains("shard 1/2 evaluated something else than shard 0/2", other.Message);
        Assert.Contains("runner.limit", other.Message);

        // run again as it should be, it resumes: only the examples it lacks are generated
        var again = Variants();
        await new EvalRunner(dir.Path, Options()).RunShardAsync(new ShardSpec(0, 2), Tasks(), again);
        Assert.Equal(["request 6", "request 7", "request 8"], again[0].Generated); // batch 0 (0-2) was done; batch 2 (6-8) was not
        var summary = EvalShards.Merge(dir.Path);
        Assert.Equal(10, summary.Tasks.Single(t => t.Task == "safety").N);

        // a split of another N beside it: say which
        await new EvalRunner(dir.Path, Options()).RunShardAsync(new ShardSpec(0, 3), Tasks(), Variants());
        var mixed = Assert.Throws<EvalRunException>(() => EvalShards.Merge(dir.Path));
        Assert.Contains("--shard-count", mixed.Message);
        Assert.Equal(10, EvalShards.Merge(dir.Path, count: 2).Tasks.Single(t => t.Task == "safety").N);
    }

    [Fact]
    public void Batches_are_dealt_whole_and_round_robin()
    {
        var owners = Enumerable.Range(0, 11).Select(i => Enumerable.Range(0, 3).Single(k => EvalShards.Owns(new ShardSpec(k, 3), i, 2))).ToArray();
        Assert.Equal([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2], owners);
    }
}
