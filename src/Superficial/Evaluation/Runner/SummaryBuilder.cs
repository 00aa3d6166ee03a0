using System.Text.Json;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Runner;

/// <summary>The recorded predictions of one task: its metric, its examples in order, and each variant's records.</summary>
public sealed record TaskPredictions(string Task, string Metric, bool HigherIsBetter, IReadOnlyList<string> ExampleIds,
    IReadOnlyDictionary<string, IReadOnlyList<PredictionRecord>> RecordsByVariant);

/// <summary>Computes an <see cref="EvalSummary"/> from prediction records: means, paired-bootstrap intervals, portions, groups.</summary>
public static class SummaryBuilder
{
    /// <summary>
    /// Builds the statistics part of a summary. Every variant must have a record for every example id;
    /// records of ids not in <see cref="TaskPredictions.ExampleIds"/> (e.g. from a run with a larger limit) are ignored.
    /// </summary>
    public static EvalSummary Build(IReadOnlyList<TaskPredictions> tasks, IReadOnlyList<Comparison> comparisons,
        int seed, int resamples, IReadOnlyDictionary<string, IReadOnlyList<string>>? notes = null)
    {
        var taskResults = new List<TaskResults>();
        var boots = new Dictionary<string, Dictionary<string, BootstrapMean>>();
        foreach (var t in tasks)
        {
            var variants = t.RecordsByVariant.Keys.ToArray();
            var ordered = variants.ToDictionary(v => v, v => Align(t, v));
            var means = PairedBootstrap.Means(variants.Select(v => (IReadOnlyList<double>)ordered[v].Select(r => r.Score).ToArray()).ToArray(),
                resamples, PairedBootstrap.SeedFor(seed, t.Task));
            boots[t.Task] = variants.Select((v, i) => (v, means[i])).ToDictionary(x => x.v, x => x.Item2);
            var results = variants.Select((v, i) => new VariantResult(v, means[i].N, means[i].Mean, means[i].Ci95)).ToArray();
            taskResults.Add(new TaskResults(t.Task, t.Metric, t.HigherIsBetter, t.ExampleIds.Count, results,
                Groups(ordered, variants), notes?.GetValueOrDefault(t.Task) ?? []));
        }

        // The listed comparisons first (the first is the main one), then the alpha sweeps they imply.
        var all = comparisons.Select((c, i) => Compare(c, EvalSummary.KeysFor(c, i == 0), null, null, tasks, taskResults, boots)).ToList();
        var evaluated = tasks.SelectMany(t => t.RecordsByVariant.Keys).Distinct().ToArray();
        foreach (var c in comparisons)
            foreach (var (sweep, alpha) in c.AlphaSweep(evaluated))
                all.Add(Compare(sweep, EvalSummary.KeysFor(sweep, false), alpha, c.Name, tasks, taskResults, boots));
        return new EvalSummary
        {
            Main = all.Count > 0 ? all[0] : null,
            Comparisons = all.Skip(1).ToArray(),
            Tasks = taskResults,
            Seed = seed,
            BootstrapResamples = resamples,
        };
    }

    static ComparisonResults Compare(Comparison c, (string, string, string) keys, double? alpha, string? sweepOf,
        IReadOnlyList<TaskPredictions> tasks, List<TaskResults> results, Dictionary<string, Dictionary<string, BootstrapMean>> boots)
    {
        var rows = new List<ComparisonTaskResult>();
        foreach (var t in tasks)
        {
            var b = boots[t.Task];
            foreach (var v in c.Variants)
                if (!b.ContainsKey(v))
                    throw new EvalRunException($"Comparison '{c.Name}' needs variant '{v}' on task '{t.Task}', which has no predictions for it.");
            var r = results.Single(x => x.Task == t.Task);
            rows.Add(new ComparisonTaskResult(t.Task, t.Metric, t.HigherIsBetter, t.ExampleIds.Count,
                r.Variant(c.Low)!, r.Variant(c.Mid)!, r.Variant(c.High)!,
                SuperficialPortion.Estimate(b[c.Low], b[c.Mid], b[c.High])));
        }
        return new ComparisonResults(c, keys, alpha, sweepOf, rows);
    }

    // Records in the order of the task's examples, so that index i is the same example for every variant.
    static PredictionRecord[] Align(TaskPredictions t, string variant)
    {
        var byId = t.RecordsByVariant[variant].ToDictionary(r => r.Id, StringComparer.Ordinal);
        return t.ExampleIds.Select(id => byId.TryGetValue(id, out var r) ? r
            : throw new EvalRunException($"Task '{t.Task}', variant '{variant}': no prediction for example '{id}'; run the evaluation to completion first.")).ToArray();
    }

    // Groups from the first variant's records (an example's groups are its own, the same for every variant).
    static IReadOnlyList<GroupResult> Groups(Dictionary<string, PredictionRecord[]> ordered, string[] variants)
    {
        var means = variants.ToDictionary(v => v, v => GroupMeans.Compute(ordered[v]));
        return means[variants[0]].Select(g => new GroupResult(g.Key, g.Value.Count,
            variants.ToDictionary(v => v, v => means[v][g.Key].Mean))).ToArray();
    }
}
