using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Superficial.Alignment;

namespace Superficial.Evaluation.Runner;

/// <summary>
/// What a run evaluates, apart from its predictions: the tasks with their examples in order, the variants,
/// the comparisons and everything summary.json records about the run. Each shard records it, so that a
/// merge builds exactly the summary a single run would, from the output folder alone.
/// </summary>
public sealed record EvalRunShape
{
    /// <summary>A task's metric and its evaluated examples, in order (the bootstrap pairs variants by this order).</summary>
    public sealed record TaskShape(string Name, string Metric, bool HigherIsBetter, IReadOnlyList<string> ExampleIds);

    public required IReadOnlyList<TaskShape> Tasks { get; init; }
    public required IReadOnlyList<string> Variants { get; init; }
    public required IReadOnlyList<Comparison> Comparisons { get; init; }
    /// <summary>Variants evaluated on only the first N examples of each task (<see cref="EvalRunOptions.VariantLimits"/>).</summary>
    public IReadOnlyDictionary<string, int> VariantLimits { get; init; } = new Dictionary<string, int>();
    public int Seed { get; init; }
    public int BootstrapResamples { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Notes { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    public IReadOnlyDictionary<string, JsonNode?> Runner { get; init; } = new Dictionary<string, JsonNode?>();
    public IReadOnlyDictionary<string, JsonNode?> Settings { get; init; } = new Dictionary<string, JsonNode?>();
    public IReadOnlyDictionary<string, string> DataSources { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Models { get; init; } = new Dictionary<string, string>();

    /// <summary>The examples a variant is evaluated on: the task's, or their first N for a variant with a limit.</summary>
    public IReadOnlyList<string> ExampleIdsFor(TaskShape task, string variant) => ExamplesFor(task.ExampleIds, VariantLimits, variant);

    public static IReadOnlyList<T> ExamplesFor<T>(IReadOnlyList<T> examples, IReadOnlyDictionary<string, int> limits, string variant) =>
        limits.TryGetValue(variant, out var n) && n < examples.Count ? examples.Take(n).ToArray() : examples;

    /// <summary>Examples per batch: the unit dealt to shards.</summary>
    public int BatchSize => Runner.TryGetValue("batch_size", out var b) && b is JsonValue v && v.TryGetValue<int>(out var n) ? n
        : throw new FormatException("runner.batch_size: expected an integer");

    public JsonObject ToJson() => new()
    {
        ["tasks"] = new JsonArray(Tasks.Select(t => (JsonNode?)new JsonObject
        {
            ["name"] = t.Name, ["metric"] = t.Metric, ["higher_is_better"] = t.HigherIsBetter,
            ["example_ids"] = new JsonArray(t.ExampleIds.Select(id => (JsonNode?)id).ToArray()),
        }).ToArray()),
        ["variants"] = new JsonArray(Variants.Select(v => (JsonNode?)v).ToArray()),
        ["variant_limits"] = new JsonObject(VariantLimits.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["comparisons"] = new JsonArray(Comparisons.Select(c => (JsonNode?)new JsonObject
        {
            ["name"] = c.Name, ["low"] = c.Low, ["mid"] = c.Mid, ["high"] = c.High,
        }).ToArray()),
        ["bootstrap"] = new JsonObject { ["seed"] = Seed, ["resamples"] = BootstrapResamples },
        ["notes"] = new JsonObject(Notes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonArray(kv.Value.Select(n => (JsonNode?)n).ToArray())))),
        ["runner"] = new JsonObject(Runner.Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))),
        ["settings"] = new JsonObject(Settings.Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))),
        ["data_sources"] = new JsonObject(DataSources.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["models"] = new JsonObject(Models.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
    };

    public static EvalRunShape FromJson(JsonObject o) => new()
    {
        Tasks = Array(o, "tasks").Select((n, i) =>
        {
            var t = n as JsonObject ?? throw new FormatException($"tasks[{i}]: expected an object");
            return new TaskShape(Str(t, "name"), Str(t, "metric"), t["higher_is_better"]?.GetValue<bool>() ?? throw new FormatException($"tasks[{i}].higher_is_better: missing"),
                Array(t, "example_ids").Select(x => x?.GetValue<string>() ?? throw new FormatException($"tasks[{i}].example_ids: expected strings")).ToArray());
        }).ToArray(),
        Variants = Array(o, "variants").Select(x => x?.GetValue<string>() ?? throw new FormatException("variants: expected strings")).ToArray(),
        // absent in shards written before variant limits existed: every variant saw every example
        VariantLimits = (o["variant_limits"] as JsonObject)?.ToDictionary(kv => kv.Key,
            kv => kv.Value is JsonValue v && v.TryGetValue<int>(out var n) && n >= 1 ? n : throw new FormatException($"variant_limits.{kv.Key}: expected a whole number, 1 or more"))
            ?? new Dictionary<string, int>(),
        Comparisons = Array(o, "comparisons").Select(n => n as JsonObject ?? throw new FormatException("comparisons: expected objects"))
            .Select(c => new Comparison(Str(c, "name"), Str(c, "low"), Str(c, "mid"), Str(c, "high"))).ToArray(),
        Seed = o["bootstrap"]?["seed"]?.GetValue<int>() ?? throw new FormatException("bootstrap.seed: missing"),
        BootstrapResamples = o["bootstrap"]?["resamples"]?.GetValue<int>() ?? throw new FormatException("bootstrap.resamples: missing"),
        Notes = Obj(o, "notes").ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)(kv.Value as JsonArray ?? [])
            .Select(x => x?.GetValue<string>() ?? "").ToArray()),
        Runner = Obj(o, "runner").ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone()),
        Settings = Obj(o, "settings").ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone()),
        DataSources = Obj(o, "data_sources").ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>() ?? ""),
        Models = Obj(o, "models").ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>() ?? ""),
    };

    static JsonArray Array(JsonObject o, string key) => o[key] as JsonArray ?? throw new FormatException($"{key}: expected an array");
    static JsonObject Obj(JsonObject o, string key) => o[key] as JsonObject ?? throw new FormatException($"{key}: expected an object");
    static string Str(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new FormatException($"{key}: expected a string");
}

/// <summary>One shard's time: the whole of its last run.</summary>
public sealed record ShardTiming(string Shard, double Seconds);

/// <summary>A finished shard of an evaluation (OUT/shards/K-of-N/shard.json): what the run evaluates, and this shard's timings.</summary>
public sealed record EvalShard(ShardSpec Shard, EvalRunShape Run, IReadOnlyList<TaskTiming> Timings, double TotalSeconds)
{
    public const string FileName = "shard.json";

    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var o = new JsonObject
        {
            ["shard"] = Shard.ToString(),
            ["run"] = Run.ToJson(),
            ["timings"] = TaskTiming.ToJson(TotalSeconds, Timings),
        };
        IO.AtomicFile.WriteAllText(Path.Combine(folder, FileName), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    public static EvalShard Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException("expected a JSON object");
            var shard = ShardSpec.Parse(o["shard"]?.GetValue<string>() ?? throw new FormatException("shard: missing"));
            var run = EvalRunShape.FromJson(o["run"] as JsonObject ?? throw new FormatException("run: expected an object"));
            var timings = (o["timings"]?["runs"] as JsonArray ?? []).Select(n => new TaskTiming(
                n!["task"]!.GetValue<string>(), n["variant"]!.GetValue<string>(), n["examples_run"]!.GetValue<int>(),
                n["generate_s"]!.GetValue<double>(), n["score_s"]!.GetValue<double>())).ToArray();
            return new EvalShard(shard, run, timings, o["timings"]?["total_s"]?.GetValue<double>() ?? 0);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or ArgumentException or NullReferenceException)
        {
            throw new EvalRunException($"{path}: not a shard record written by eval --shard ({e.Message}).", e);
        }
    }
}

/// <summary>
/// Evaluation split over N workers (eval --shard K/N) and put back together (eval merge). Worker K evaluates
/// every N-th batch of each task's examples, starting with batch K (whole batches, so every batch holds the
/// same examples as in a single run and gives the same outputs), into OUT/shards/K-of-N/; the merge checks
/// that all N finished the same run, writes the predictions in example order to OUT/predictions/ and the
/// summary a single run would write, with the shards' times added up.
/// </summary>
public static class EvalShards
{
    public const string FolderName = "shards";
    static readonly Regex ShardFolder = new(@"^(\d+)-of-(\d+)$", RegexOptions.CultureInvariant);

    public static string FolderOf(string outputDir, ShardSpec shard) =>
        Path.Combine(outputDir, FolderName, $"{shard.Index}-of-{shard.Count}");

    /// <summary>Example <paramref name="index"/> of a task belongs to <paramref name="shard"/> (batches are dealt round-robin).</summary>
    public static bool Owns(ShardSpec shard, int index, int batchSize) => shard.Owns(index / batchSize);

    /// <summary>The shard counts N that have folders under OUT/shards/.</summary>
    public static IReadOnlyList<int> Counts(string outputDir)
    {
        var root = Path.Combine(outputDir, FolderName);
        if (!Directory.Exists(root)) return [];
        return Directory.GetDirectories(root).Select(d => ShardFolder.Match(Path.GetFileName(d)))
            .Where(m => m.Success).Select(m => int.Parse(m.Groups[2].Value)).Distinct().Order().ToArray();
    }

    /// <summary>
    /// Merges the N finished shards under <paramref name="outputDir"/> (N from <paramref name="count"/>, or the
    /// only N there is): writes predictions/TASK/VARIANT.jsonl and summary.json, and returns the summary.
    /// </summary>
    public static EvalSummary Merge(string outputDir, int? count = null)
    {
        var counts = Counts(outputDir);
        int n = count ?? counts.Count switch
        {
            0 => throw new EvalRunException($"{Path.Combine(outputDir, FolderName)}: no evaluation shards to merge (eval --shard K/N writes them there)."),
            1 => counts[0],
            _ => throw new EvalRunException($"{Path.Combine(outputDir, FolderName)} holds shards of runs split {string.Join(" and ", counts.Select(c => $"{c} ways"))}; " +
                                            "say which with --shard-count N (or delete the stale folders)."),
        };
        if (n < 1) throw new EvalRunException($"--shard-count {n}: expected at least 1.");
        var folders = Enumerable.Range(0, n).Select(k => FolderOf(outputDir, new ShardSpec(k, n))).ToArray();
        var unfinished = Enumerable.Range(0, n).Where(k => !File.Exists(Path.Combine(folders[k], EvalShard.FileName))).ToArray();
        if (unfinished.Length > 0)
            throw new EvalRunException($"shard(s) {string.Join(", ", unfinished.Select(k => $"{k}/{n}"))} of {Path.GetFullPath(outputDir)} have not finished " +
                                       $"(no {EvalShard.FileName} in {string.Join(", ", unfinished.Select(k => folders[k]))}); run them again (eval --shard K/N with the same options, or the same array task): they resume.");
        var shards = folders.Select(EvalShard.Load).ToArray();
        var shape = shards[0].Run;
        var reference = Comparable(shape);
        for (int k = 1; k < n; k++)
        {
            var diff = IO.JsonDiff.Differences(reference, Comparable(shards[k].Run));
            if (diff.Count > 0)
                throw new EvalRunException($"shard {k}/{n} evaluated something else than shard 0/{n}: " +
                    string.Join("; ", diff.Take(4).Select(d => $"{d.Path} is {d.Existing ?? "absent"} in shard 0 but {d.Requested ?? "absent"} in shard {k}")) +
                    ". Run every shard with the same options.");
        }

        var batch = shape.BatchSize;
        var recorded = new Dictionary<string, Dictionary<string, IReadOnlyList<PredictionRecord>>>();
        foreach (var task in shape.Tasks)
        {
            recorded[task.Name] = [];
            foreach (var variant in shape.Variants)
            {
                var byId = new Dictionary<string, PredictionRecord>(StringComparer.Ordinal);
                string? identity = null;
                for (int k = 0; k < n; k++)
                {
                    var file = PredictionFile.PathFor(folders[k], task.Name, variant);
                    var spec = new ShardSpec(k, n);
                    var owned = shape.ExampleIdsFor(task, variant).Where((_, i) => Owns(spec, i, batch)).ToHashSet(StringComparer.Ordinal);
                    foreach (var r in PredictionFile.Read(file))
                    {
                        // as in a single run, records of examples no longer evaluated (an earlier run with another --limit) are left out
                        if (owned.Contains(r.Id)) byId[r.Id] = r;
                    }
                    if (owned.FirstOrDefault(id => !byId.ContainsKey(id)) is { } missing)
                        throw new EvalRunException($"{file}: no prediction for example '{missing}' of shard {spec}; run that shard again (it resumes).");
                    var idFile = Path.ChangeExtension(file, ".variant.json");
                    if (File.Exists(idFile))
                    {
                        var id = File.ReadAllText(idFile);
                        if (identity is not null && id != identity)
                            throw new EvalRunException($"{idFile}: shard {spec} evaluated another '{variant}' than shard 0/{n} (another model, head or alpha).");
                        identity = id;
                    }
                }
                var records = shape.ExampleIdsFor(task, variant).Select(id => byId[id]).ToArray();
                var path = PredictionFile.PathFor(outputDir, task.Name, variant);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                if (identity is not null) PredictionFile.CheckIdentity(path, variant, identity);
                var text = new StringBuilder();
                foreach (var r in records) text.Append(r.ToJsonLine()).Append('\n');
                IO.AtomicFile.WriteAllText(path, text.ToString());
                recorded[task.Name][variant] = records;
            }
        }

        // Each (task, variant)'s time added up over the shards, in a single run's order.
        var timings = shards[0].Timings.Select(t =>
        {
            var all = shards.SelectMany(s => s.Timings).Where(x => x.Task == t.Task && x.Variant == t.Variant).ToArray();
            return new TaskTiming(t.Task, t.Variant, all.Sum(x => x.ExamplesRun), all.Sum(x => x.GenerateSeconds), all.Sum(x => x.ScoreSeconds));
        }).ToArray();
        var summary = EvalRunner.Summarize(shape, recorded, timings, shards.Sum(s => s.TotalSeconds),
            shards.Select(s => new ShardTiming(s.Shard.ToString(), s.TotalSeconds)).ToArray());
        summary.Save(outputDir);
        return summary;
    }

    // What shards must agree on: everything but when and with which command line each was started.
    static JsonObject Comparable(EvalRunShape shape)
    {
        var o = shape.ToJson();
        if (o["settings"] is JsonObject s) { s.Remove("date"); s.Remove("command_line"); }
        return o;
    }
}
