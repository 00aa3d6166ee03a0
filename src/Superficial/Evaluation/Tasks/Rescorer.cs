using System.Text.Json;
using System.Text.Json.Serialization;
using Superficial.Evaluation.Judges;
using Superficial.Evaluation.Stats;
using Superficial.Evaluation.Toxicity;

namespace Superficial.Evaluation.Tasks;

/// <summary>Summary of a re-scoring: the metric per variant, and who scored.</summary>
public sealed record RescoreSummary(
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("metric")] string Metric,
    [property: JsonPropertyName("higher_is_better")] bool HigherIsBetter,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("variants")] IReadOnlyDictionary<string, VariantSummary> Variants,
    [property: JsonPropertyName("scorers")] IReadOnlyDictionary<string, object?> Scorers);

/// <summary>One variant's mean score over its examples, with the per-group breakdown where examples have groups.</summary>
public sealed record VariantSummary(
    [property: JsonPropertyName("count")] int Count,
    [property: JsonPropertyName("mean")] double Mean,
    [property: JsonPropertyName("per_group")] IReadOnlyDictionary<string, GroupRate>? PerGroup);

/// <summary>
/// Re-scores saved outputs (superficial score --task T --predictions FILE): reads them with
/// <see cref="PredictionImport"/>, scores each with the task and the context's judges, and writes
/// rescored_predictions.jsonl and rescore_summary.json to the output folder.
/// </summary>
public static class Rescorer
{
    public const string PredictionsFileName = "rescored_predictions.jsonl";
    public const string SummaryFileName = "rescore_summary.json";

    static readonly JsonSerializerOptions SummaryJson = new(PredictionRecord.JsonOptions) { WriteIndented = true };

    /// <param name="variant">Variant name for lines that do not record one.</param>
    /// <param name="parallelism">Examples scored at once (judges also cap their own concurrency).</param>
    public static async Task<RescoreSummary> RescoreAsync(IEvalTask task, string predictionsFile, ScoringContext context, string outDir,
        string variant = "imported", int parallelism = 8, IProgress<int>? progress = null, CancellationToken ct = default)
    {
        if (task.Kind != TaskKind.Generation)
            throw new InvalidOperationException($"{task.Name} is a multiple-choice task: it is scored from log-likelihoods, so saved text outputs cannot be re-scored.");
        context.CheckServices(task);
        Directory.CreateDirectory(outDir);
        var outPath = Path.GetFullPath(Path.Combine(outDir, PredictionsFileName));
        if (outPath == Path.GetFullPath(predictionsFile))
            throw new ArgumentException($"The output folder would overwrite the input {predictionsFile}; choose another output folder.");

        var items = PredictionImport.Read(task, predictionsFile, variant);
        var records = new PredictionRecord[items.Count];
        int done = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, items.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = ct },
            async (i, token) =>
            {
                var it = items[i];
                var score = await task.ScoreAsync(it.Example, it.Output, context, token).ConfigureAwait(false);
                records[i] = RecordBuilder.Build(task, it.Variant, it.Example, it.Prompt, it.Output, score);
                progress?.Report(Interlocked.Increment(ref done));
            }).ConfigureAwait(false);

        var summary = new RescoreSummary(task.Name, task.Metric, task.HigherIsBetter, Path.GetFullPath(predictionsFile),
            records.GroupBy(r => r.Variant).ToDictionary(g => g.Key, g => Summarize(g.ToArray())), Scorers(context));

        WriteAtomically(outPath, records.Select(r => r.ToJsonLine() + "\n"));
        WriteAtomically(Path.Combine(outDir, SummaryFileName), [JsonSerializer.Serialize(summary, SummaryJson) + "\n"]);
        return summary;
    }

    static VariantSummary Summarize(PredictionRecord[] records)
    {
        bool grouped = records.Length > 0 && records.All(r => r.Fields?.ContainsKey(GroupMeans.Field) == true);
        return new VariantSummary(records.Length, records.Length == 0 ? double.NaN : records.Average(r => r.Score),
            grouped ? ToxiGenTask.PerGroup(records) : null);
    }

    static Dictionary<string, object?> Scorers(ScoringContext context)
    {
        var s = new Dictionary<string, object?>();
        if (context.Get<ISafetyJudge>() is { } safety) s["safety_judge"] = safety.Name;
        if (context.Get<ITruthJudge>() is { } truth) s["truth_judge"] = truth.Name;
        if (context.Get<IToxicityLabeler>() is { } tox)
        {
            s["toxicity_labeler"] = tox.Name;
            s["toxicity_labeler_accuracy"] = tox.Accuracy;
        }
        return s;
    }

    static void WriteAtomically(string path, IEnumerable<string> chunks)
    {
        IO.AtomicFile.Write(path, tmp =>
        {
            using var w = new StreamWriter(tmp, false, new System.Text.UTF8Encoding(false));
            foreach (var c in chunks) w.Write(c);
        });
    }
}
