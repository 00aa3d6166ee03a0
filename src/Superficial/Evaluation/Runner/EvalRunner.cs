using System.Diagnostics;
using System.Text.Json;
using Superficial.Alignment;
using Superficial.Generation;

namespace Superficial.Evaluation.Runner;

/// <summary>
/// Evaluates model variants on tasks and writes, under an output folder, predictions/&lt;task&gt;/&lt;variant&gt;.jsonl
/// and summary.json. Resumable: each batch's records are appended and flushed only once the whole batch is
/// scored, and a rerun skips the examples already recorded for a (task, variant), so an interrupted run
/// (Ctrl-C, crash) loses at most the batch in flight. A run can be split over workers (<see cref="RunShardAsync"/>)
/// and put back together (<see cref="EvalShards.Merge"/>).
/// </summary>
public sealed class EvalRunner
{
    readonly string _outputDir;
    readonly EvalRunOptions _options;
    readonly System.Collections.Concurrent.ConcurrentQueue<string> _unscored = new();

    /// <summary>Examples a judge could not score (after its retries), one JSON line each; they are left out of the predictions, so a rerun tries them again.</summary>
    public const string ScoringFailuresFile = "scoring-failures.jsonl";

    public EvalRunner(string outputDir, EvalRunOptions? options = null)
    {
        _outputDir = outputDir;
        _options = options ?? new EvalRunOptions();
        if (_options.BatchSize < 1) throw new EvalRunException($"Batch size must be at least 1 (got {_options.BatchSize}).");
        if (_options.ScoringConcurrency < 1) throw new EvalRunException($"Scoring concurrency must be at least 1 (got {_options.ScoringConcurrency}).");
        if (_options.Limit is < 1) throw new EvalRunException($"Limit must be at least 1 example (got {_options.Limit}).");
        if (_options.VariantLimits.FirstOrDefault(kv => kv.Value < 1) is { Key: not null } bad)
            throw new EvalRunException($"Variant '{bad.Key}': its limit must be at least 1 example (got {bad.Value}).");
        if (_options.MaxNewTokens is < 1) throw new EvalRunException($"MaxNewTokens must be at least 1 (got {_options.MaxNewTokens}).");
        if (_options.BootstrapResamples < 1) throw new EvalRunException($"Bootstrap resamples must be at least 1 (got {_options.BootstrapResamples}).");
    }

    /// <summary>
    /// Runs every variant on every task (skipping recorded examples), then writes and returns the summary.
    /// Variants that are IDisposable are disposed once all their tasks are done (lazily loaded models are freed).
    /// </summary>
    public async Task<EvalSummary> RunAsync(IReadOnlyList<IEvalTask> tasks, IReadOnlyList<IModelVariant> variants,
        IProgress<EvalProgress>? progress = null, CancellationToken ct = default)
    {
        var (shape, recorded, timings, seconds) = await EvaluateAsync(tasks, variants, ShardSpec.Single, _outputDir, progress, ct);
        var summary = Summarize(shape, recorded, timings, seconds);
        summary.Save(_outputDir);
        return summary;
    }

    /// <summary>
    /// Runs this worker's slice of the evaluation (<paramref name="shard"/> K of N: every N-th batch of each task's
    /// examples, so each batch holds the same examples as in a single run) into OUT/shards/K-of-N/, resumably,
    /// and records what <see cref="EvalShards.Merge"/> needs there (shard.json) instead of a summary.
    /// </summary>
    public async Task<EvalShard> RunShardAsync(ShardSpec shard, IReadOnlyList<IEvalTask> tasks, IReadOnlyList<IModelVariant> variants,
        IProgress<EvalProgress>? progress = null, CancellationToken ct = default)
    {
        var dir = EvalShards.FolderOf(_outputDir, shard);
        // a shard is finished when its record exists: not while it runs again (e.g. with other options)
        var finished = Path.Combine(dir, EvalShard.FileName);
        if (File.Exists(finished)) File.Delete(finished);
        var (shape, _, timings, seconds) = await EvaluateAsync(tasks, variants, shard, dir, progress, ct);
        var record = new EvalShard(shard, shape, timings, seconds);
        record.Save(dir);
        return record;
    }

    async Task<(EvalRunShape, Dictionary<string, Dictionary<string, IReadOnlyList<PredictionRecord>>>, List<TaskTiming>, double)> EvaluateAsync(
        IReadOnlyList<IEvalTask> tasks, IReadOnlyList<IModelVariant> variants, ShardSpec shard, string dir,
        IProgress<EvalProgress>? progress, CancellationToken ct)
    {
        Validate(tasks, variants);
        var total = Stopwatch.StartNew();
        var timings = new List<TaskTiming>();
        var splitSizes = tasks.ToDictionary(t => t.Name, t => t.EvaluationSplit().Count);
        var examples = tasks.ToDictionary(t => t.Name, Examples);
        // this worker's examples of a task for a variant (a variant with a limit sees only the first ones)
        IReadOnlyList<TaskExample> Mine(string task, string variant) =>
            EvalRunShape.ExamplesFor(examples[task], _options.VariantLimits, variant).Where((_, i) => EvalShards.Owns(shard, i, _options.BatchSize)).ToArray();
        var recorded = tasks.ToDictionary(t => t.Name, _ => new Dictionary<string, IReadOnlyList<PredictionRecord>>());
        // Variant by variant, so a variant's model can be released before the next one is loaded.
        foreach (var variant in variants)
        {
            foreach (var task in tasks)
            {
                ct.ThrowIfCancellationRequested();
                var (records, timing) = await RunOneAsync(task, variant, Mine(task.Name, variant.Name), dir, progress, ct);
                recorded[task.Name][variant.Name] = records;
                timings.Add(timing);
            }
            (variant as IDisposable)?.Dispose();
        }
        if (!_unscored.IsEmpty)
            throw new EvalRunException(
                $"{_unscored.Count} example(s) could not be scored: the judge gave no readable verdict after its retries " +
                $"(listed with the judge's last reply in {Path.Combine(dir, ScoringFailuresFile)}). Every other prediction is saved; " +
                $"run the same command again to retry only these (answered judge calls are cached). First: {_unscored.First()}");

        var shape = new EvalRunShape
        {
            Tasks = tasks.Select(t => new EvalRunShape.TaskShape(t.Name, t.Metric, t.HigherIsBetter, examples[t.Name].Select(e => e.Id).ToArray())).ToArray(),
            Variants = variants.Select(v => v.Name).ToArray(),
            VariantLimits = _options.VariantLimits,
            Comparisons = _options.Comparisons,
            Seed = _options.Seed,
            BootstrapResamples = _options.BootstrapResamples,
            Notes = _options.Notes,
            Runner = new Dictionary<string, System.Text.Json.Nodes.JsonNode?>
            {
                ["batch_size"] = _options.BatchSize,
                ["scoring_concurrency"] = _options.ScoringConcurrency,
                ["limit"] = _options.Limit,
                ["variant_limits"] = new System.Text.Json.Nodes.JsonObject(_options.VariantLimits.Select(kv => KeyValuePair.Create(kv.Key, (System.Text.Json.Nodes.JsonNode?)kv.Value))),
                ["max_new_tokens"] = _options.MaxNewTokens,
                ["tasks"] = new System.Text.Json.Nodes.JsonArray(tasks.Select(t => (System.Text.Json.Nodes.JsonNode?)t.Name).ToArray()),
                ["variants"] = new System.Text.Json.Nodes.JsonArray(variants.Select(v => (System.Text.Json.Nodes.JsonNode?)v.Name).ToArray()),
                // as lm-evaluation-harness's "n-samples": the task's evaluation split, and how many of it were evaluated
                ["n_samples"] = new System.Text.Json.Nodes.JsonObject(tasks.Select(t => KeyValuePair.Create(t.Name, (System.Text.Json.Nodes.JsonNode?)
                    new System.Text.Json.Nodes.JsonObject { ["original"] = splitSizes[t.Name], ["effective"] = examples[t.Name].Count }))),
            },
            Settings = _options.Settings,
            DataSources = _options.DataSources,
            Models = _options.Models,
        };
        return (shape, recorded, timings, total.Elapsed.TotalSeconds);
    }

    /// <summary>The summary of a run from what it evaluated and its records (every example of every task, per variant).</summary>
    internal static EvalSummary Summarize(EvalRunShape shape, IReadOnlyDictionary<string, Dictionary<string, IReadOnlyList<PredictionRecord>>> recorded,
        IReadOnlyList<TaskTiming> timings, double totalSeconds, IReadOnlyList<ShardTiming>? shards = null)
    {
        var predictions = shape.Tasks.Select(t => new TaskPredictions(t.Name, t.Metric, t.HigherIsBetter, t.ExampleIds, recorded[t.Name], shape.VariantLimits)).ToArray();
        var stats = SummaryBuilder.Build(predictions, shape.Comparisons, shape.Seed, shape.BootstrapResamples, shape.Notes);
        return new EvalSummary
        {
            Main = stats.Main,
            Comparisons = stats.Comparisons,
            Tasks = stats.Tasks,
            Seed = stats.Seed,
            BootstrapResamples = stats.BootstrapResamples,
            Runner = shape.Runner,
            Settings = shape.Settings,
            DataSources = shape.DataSources,
            Models = shape.Models,
            Timings = timings,
            TotalSeconds = totalSeconds,
            Shards = shards ?? [],
        };
    }

    /// <summary>The task's generation budget, capped by <see cref="EvalRunOptions.MaxNewTokens"/>.</summary>
    int MaxNewTokens(IEvalTask task) => Math.Min(task.MaxNewTokens, _options.MaxNewTokens ?? int.MaxValue);

    /// <summary>A variant's identity for a task's prediction file: with the cap on new tokens when it shortens the task's generations.</summary>
    string CappedIdentity(string identity, IEvalTask task)
    {
        if (task.Kind != TaskKind.Generation || MaxNewTokens(task) == task.MaxNewTokens) return identity;
        try
        {
            if (System.Text.Json.Nodes.JsonNode.Parse(identity) is System.Text.Json.Nodes.JsonObject o)
            {
                o["max_new_tokens"] = MaxNewTokens(task);
                return o.ToJsonString();
            }
        }
        catch (System.Text.Json.JsonException) { }
        return $"{identity} (max_new_tokens {MaxNewTokens(task)})";
    }

    async Task<(IReadOnlyList<PredictionRecord>, TaskTiming)> RunOneAsync(IEvalTask task, IModelVariant variant,
        IReadOnlyList<TaskExample> examples, string dir, IProgress<EvalProgress>? progress, CancellationToken ct)
    {
        var path = PredictionFile.PathFor(dir, task.Name, variant.Name);
        if (_options.ReuseFrom is { } from && variant.Identity is string same && !File.Exists(path))
            Reuse(PredictionFile.PathFor(from, task.Name, variant.Name), path, variant.Name, CappedIdentity(same, task), examples);
        var existing = PredictionFile.Read(path, repair: true);
        if (variant.Identity is string identity) PredictionFile.CheckIdentity(path, variant.Name, CappedIdentity(identity, task));
        foreach (var r in existing)
            if (r.Task != task.Name || r.Variant != variant.Name)
                throw new EvalRunException($"{path}: holds a record of task '{r.Task}', variant '{r.Variant}' (example '{r.Id}'); " +
                    $"this file is for task '{task.Name}', variant '{variant.Name}'.");
        var all = existing.ToList();
        var done = existing.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var pending = examples.Where(e => !done.Contains(e.Id)).ToArray();
        var doneCount = examples.Count - pending.Length;
        progress?.Report(new EvalProgress(task.Name, variant.Name, doneCount, examples.Count));

        var generate = new Stopwatch();
        var score = new Stopwatch();
        foreach (var batch in pending.Chunk(_options.BatchSize))
        {
            ct.ThrowIfCancellationRequested();
            var records = task.Kind switch
            {
                TaskKind.Generation => await GenerationBatchAsync(task, variant, batch, dir, generate, score, ct),
                TaskKind.MultipleChoice or TaskKind.RollingLogLikelihood => await ChoiceBatchAsync(task, variant, batch, generate, score, ct),
                _ => throw new EvalRunException($"Task '{task.Name}' has unknown kind {task.Kind}."),
            };
            // The whole batch is scored before anything is written, so a file never holds half a batch.
            PredictionFile.Append(path, records);
            all.AddRange(records);
            doneCount += batch.Length;
            progress?.Report(new EvalProgress(task.Name, variant.Name, doneCount, examples.Count));
        }
        return (all, new TaskTiming(task.Name, variant.Name, pending.Length, generate.Elapsed.TotalSeconds, score.Elapsed.TotalSeconds));
    }

    /// <summary>Starts <paramref name="path"/> with another run's records of these examples if that run evaluated the same variant.</summary>
    static void Reuse(string from, string path, string variantName, string identity, IReadOnlyList<TaskExample> examples)
    {
        var fromId = Path.ChangeExtension(from, ".variant.json");
        if (!File.Exists(fromId) || File.ReadAllText(fromId) != identity) return;
        var ids = examples.Select(e => e.Id).ToHashSet(StringComparer.Ordinal);
        var records = PredictionFile.Read(from).Where(r => ids.Contains(r.Id)).ToArray();
        if (records.Length == 0) return;
        PredictionFile.CheckIdentity(path, variantName, identity);
        PredictionFile.Append(path, records);
    }

    async Task<PredictionRecord[]> GenerationBatchAsync(IEvalTask task, IModelVariant variant, TaskExample[] batch, string dir,
        Stopwatch generate, Stopwatch score, CancellationToken ct)
    {
        var prompts = batch.Select(task.BuildPrompt).ToArray();
        generate.Start();
        // Off the caller's thread, so a progress display on it stays live while the model works.
        IReadOnlyList<string> outputs;
        try { outputs = await Task.Run(() => variant.Generate(prompts, MaxNewTokens(task), task.StopStrings, null, ct), ct); }
        catch (Generation.PromptTooLongException e) when (e.Index < batch.Length) { throw TooLong(task, variant, batch[e.Index], e); }
        generate.Stop();
        if (outputs.Count != prompts.Length)
            throw new EvalRunException($"Variant '{variant.Name}' returned {outputs.Count} generations for {prompts.Length} prompts of task '{task.Name}'.");

        score.Start();
        var scores = new ExampleScore[batch.Length];
        var failed = new string?[batch.Length];
        await Parallel.ForAsync(0, batch.Length,
            new ParallelOptions { MaxDegreeOfParallelism = _options.ScoringConcurrency, CancellationToken = ct },
            async (i, token) =>
            {
                try { scores[i] = await task.ScoreAsync(batch[i], outputs[i], _options.Scoring, token); }
                catch (Judges.JudgeException e) when (!e.Fatal) { failed[i] = e.Message; }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new EvalRunException($"Task '{task.Name}' failed to score example '{batch[i].Id}' of variant '{variant.Name}': {e.Message}", e);
                }
            });
        score.Stop();
        RecordFailures(task, variant, batch, failed, dir);
        return batch.Select((e, i) => failed[i] is null ? Record(task, variant, e, prompts[i], outputs[i], scores[i], null) : null)
            .OfType<PredictionRecord>().ToArray();
    }

    async Task<PredictionRecord[]> ChoiceBatchAsync(IEvalTask task, IModelVariant variant, TaskExample[] batch,
        Stopwatch generate, Stopwatch score, CancellationToken ct)
    {
        var prompts = batch.Select(task.BuildPrompt).ToArray();
        var continuations = batch.Select(e => task.Continuations(e)).ToArray();
        for (var i = 0; i < batch.Length; i++)
            if (continuations[i].Count == 0)
                throw new EvalRunException($"Task '{task.Name}' gave no continuations for multiple-choice example '{batch[i].Id}'.");
        var requests = batch.SelectMany((_, i) => continuations[i].Select(c => (prompts[i], c))).ToArray();
        generate.Start();
        IReadOnlyList<double> ll;
        try { ll = await Task.Run(() => variant.LogLikelihood(requests, null, ct), ct); }
        catch (Generation.PromptTooLongException e) when (e.Index < requests.Length)
        {
            int example = 0;
            for (int seen = continuations[0].Count; seen <= e.Index; seen += continuations[++example].Count) { }
            throw TooLong(task, variant, batch[example], e);
        }
        generate.Stop();
        if (ll.Count != requests.Length)
            throw new EvalRunException($"Variant '{variant.Name}' returned {ll.Count} log-likelihoods for {requests.Length} requests of task '{task.Name}'.");

        score.Start();
        var records = new PredictionRecord[batch.Length];
        var offset = 0;
        for (var i = 0; i < batch.Length; i++)
        {
            var mine = ll.Skip(offset).Take(continuations[i].Count).ToArray();
            offset += mine.Length;
            var s = task.ScoreChoices(batch[i], mine);
            var best = Array.IndexOf(mine, mine.Max());
            records[i] = Record(task, variant, batch[i], prompts[i], continuations[i][best], s, mine);
        }
        score.Stop();
        return records;
    }

    static EvalRunException TooLong(IEvalTask task, IModelVariant variant, TaskExample example, Generation.PromptTooLongException e) =>
        new($"Task '{task.Name}', example '{example.Id}': its prompt for variant '{variant.Name}' has {e.Tokens} tokens, " +
            $"more than the model's context allows ({e.Limit}). Shorten or drop that example.", e);

    void RecordFailures(IEvalTask task, IModelVariant variant, TaskExample[] batch, string?[] failed, string dir)
    {
        var lines = new System.Text.StringBuilder();
        for (int i = 0; i < batch.Length; i++)
        {
            if (failed[i] is not { } message) continue;
            _unscored.Enqueue($"task '{task.Name}', variant '{variant.Name}', example '{batch[i].Id}': {message}");
            lines.Append(JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["time"] = DateTime.UtcNow.ToString("O"), ["task"] = task.Name, ["variant"] = variant.Name, ["id"] = batch[i].Id, ["error"] = message,
            }, PredictionRecord.JsonOptions)).Append('\n');
        }
        if (lines.Length == 0) return;
        Directory.CreateDirectory(dir);
        File.AppendAllText(Path.Combine(dir, ScoringFailuresFile), lines.ToString());
    }

    // The record layout (example fields, then score details, flat) is the tasks' own, shared with re-scoring.
    static PredictionRecord Record(IEvalTask task, IModelVariant variant, TaskExample example, PromptSpec prompt,
        string output, ExampleScore score, double[]? logLikelihoods)
    {
        if (!double.IsFinite(score.Value))
            throw new EvalRunException($"Task '{task.Name}' scored example '{example.Id}' of variant '{variant.Name}' as {score.Value}; scores must be finite numbers.");
        var record = Tasks.RecordBuilder.Build(task, variant.Name, example, variant.RenderPrompt(prompt), output, score);
        if (logLikelihoods is not null)
        {
            record.Fields ??= [];
            record.Fields["loglikelihoods"] = JsonSerializer.SerializeToElement(logLikelihoods);
        }
        return record;
    }

    IReadOnlyList<TaskExample> Examples(IEvalTask task)
    {
        var all = task.EvaluationSplit();
        var examples = _options.Limit is { } n ? all.Take(n).ToArray() : all.ToArray();
        if (examples.Length == 0) throw new EvalRunException($"Task '{task.Name}' has no evaluation examples.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in examples)
            if (!seen.Add(e.Id))
                throw new EvalRunException($"Task '{task.Name}' has two evaluation examples with id '{e.Id}'; ids must be unique to resume runs.");
        return examples;
    }

    void Validate(IReadOnlyList<IEvalTask> tasks, IReadOnlyList<IModelVariant> variants)
    {
        if (tasks.Count == 0) throw new EvalRunException("No tasks to evaluate.");
        if (variants.Count == 0) throw new EvalRunException("No model variants to evaluate.");
        CheckNames(tasks.Select(t => t.Name), "task");
        CheckNames(variants.Select(v => v.Name), "variant");
        foreach (var t in tasks) _options.Scoring.CheckServices(t);
        var names = variants.Select(v => v.Name).ToHashSet();
        if (_options.VariantLimits.Keys.FirstOrDefault(v => !names.Contains(v)) is { } unknown)
            throw new EvalRunException($"A limit is given for variant '{unknown}', which is not among the variants evaluated ({string.Join(", ", names)}).");
        var comparisonNames = new HashSet<string>();
        foreach (var c in _options.Comparisons)
        {
            if (!comparisonNames.Add(c.Name)) throw new EvalRunException($"Two comparisons are named '{c.Name}'.");
            if (c.Variants.Distinct().Count() != 3)
                throw new EvalRunException($"Comparison '{c.Name}' must name three different variants (got {c.Low}, {c.Mid}, {c.High}).");
            var missing = c.Variants.Where(v => !names.Contains(v)).ToArray();
            if (missing.Length > 0)
                throw new EvalRunException($"Comparison '{c.Name}' needs variant(s) {string.Join(", ", missing)}, which are not among the variants evaluated ({string.Join(", ", names)}).");
        }
    }

    // Names become file and folder names.
    static void CheckNames(IEnumerable<string> names, string what)
    {
        var seen = new HashSet<string>();
        foreach (var n in names)
        {
            if (string.IsNullOrWhiteSpace(n) || n is "." or ".." || n.IndexOfAny(['/', '\\', '\0']) >= 0 || n != n.Trim())
                throw new EvalRunException($"The {what} name '{n}' cannot be used as a file name: it must be non-empty, without slashes or surrounding spaces.");
            if (!seen.Add(n)) throw new EvalRunException($"Two {what}s are named '{n}'; names must be unique.");
        }
    }
}
