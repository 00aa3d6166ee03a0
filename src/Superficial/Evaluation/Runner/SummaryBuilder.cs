using System.Text.Json;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Runner;

/// <summary>The recorded predictions of one task: its metric, its examples in order, and each variant's records.
/// <paramref name="VariantLimits"/>: variants evaluated on only the first N examples (<see cref="EvalRunOptions.VariantLimits"/>).</summary>
public sealed record TaskPredictions(string Task, string Metric, bool HigherIsBetter, IReadOnlyList<string> ExampleIds,
    IReadOnlyDictionary<string, IReadOnlyList<PredictionRecord>> RecordsByVariant, IReadOnlyDictionary<string, int>? VariantLimits = null)
{
    /// <summary>The examples a variant was evaluated on: all of them, or the first N for a variant with a limit.</summary>
    public IReadOnlyList<string> ExampleIdsFor(string variant) =>
        EvalRunShape.ExamplesFor(ExampleIds, VariantLimits ?? new Dictionary<string, int>(), variant);
}

/// <summary>Computes an <see cref="EvalSummary"/> from prediction records: means, paired-bootstrap intervals, portions, groups.</summary>
public static class SummaryBuilder
{
    /// <summary>
    /// Builds the statistics part of a summary. Every variant must have a record for every example id it was evaluated on;
    /// records of ids not in <see cref="TaskPredictions.ExampleIds"/> (e.g. from a run with a larger limit) are ignored.
    /// When variants saw different numbers of examples (a variant limit), each variant's mean is over its own examples and
    /// each comparison rests on the first n examples, n the fewest its three variants saw: one paired bootstrap per n.
    /// </summary>
    public static EvalSummary Build(IReadOnlyList<TaskPredictions> tasks, IReadOnlyList<Comparison> comparisons,
        int seed, int resamples, IReadOnlyDictionary<string, IReadOnlyList<string>>? notes = null)
    {
        var taskResults = new List<TaskResults>();
        // task -> n -> variant -> bootstrap mean over the first n examples (one paired bootstrap per n)
        var boots = new Dictionary<string, Dictionary<int, Dictionary<string, BootstrapMean>>>();
        foreach (var t in tasks)
        {
            var variants = t.RecordsByVariant.Keys.ToArray();
            var ordered = variants.ToDictionary(v => v, v => Align(t, v));
            boots[t.Task] = [];
            foreach (var n in ordered.Values.Select(r => r.Length).Distinct())
            {
                var over = variants.Where(v => ordered[v].Length >= n).ToArray();
                var means = PairedBootstrap.Means(over.Select(v => (IReadOnlyList<double>)ordered[v].Take(n).Select(r => r.Score).ToArray()).ToArray(),
                    resamples, PairedBootstrap.SeedFor(seed, t.Task));
                boots[t.Task][n] = over.Select((v, i) => (v, means[i])).ToDictionary(x => x.v, x => x.Item2);
            }
            var results = variants.Select(v => Result(v, boots[t.Task][ordered[v].Length][v])).ToArray();
            // groups over the variants that saw every example, so that each group's n holds for every column
            var full = variants.Where(v => ordered[v].Length == t.ExampleIds.Count).ToArray();
            taskResults.Add(new TaskResults(t.Task, t.Metric, t.HigherIsBetter, t.ExampleIds.Count, results,
                full.Length > 0 ? Groups(ordered, full) : [], notes?.GetValueOrDefault(t.Task) ?? []));
        }

        // The listed comparisons first (the first is the main one), then the alpha sweeps they imply.
        var all = comparisons.Select((c, i) => Compare(c, EvalSummary.KeysFor(c, i == 0), null, null, tasks, boots)).ToList();
        var evaluated = tasks.SelectMany(t => t.RecordsByVariant.Keys).Distinct().ToArray();
        foreach (var c in comparisons)
            foreach (var (sweep, alpha) in c.AlphaSweep(evaluated))
                all.Add(Compare(sweep, EvalSummary.KeysFor(sweep, false), alpha, c.Name, tasks, boots));
        return new EvalSummary
        {
            Main = all.Count > 0 ? all[0] : null,
            Comparisons = all.Skip(1).ToArray(),
            Tasks = taskResults,
            Seed = seed,
            BootstrapResamples = resamples,
        };
    }

    static VariantResult Result(string variant, BootstrapMean m) => new(variant, m.N, m.Mean, m.Ci95);

    static ComparisonResults Compare(Comparison c, (string, string, string) keys, double? alpha, string? sweepOf,
        IReadOnlyList<TaskPredictions> tasks, Dictionary<string, Dictionary<int, Dictionary<string, BootstrapMean>>> boots)
    {
        var rows = new List<ComparisonTaskResult>();
        foreach (var t in tasks)
        {
            foreach (var v in c.Variants)
                if (!t.RecordsByVariant.ContainsKey(v))
                    throw new EvalRunException($"Comparison '{c.Name}' needs variant '{v}' on task '{t.Task}', which has no predictions for it.");
            // the examples all three saw: the first n, n the fewest of the three
            var n = c.Variants.Min(v => t.ExampleIdsFor(v).Count);
            var b = boots[t.Task][n];
            rows.Add(new ComparisonTaskResult(t.Task, t.Metric, t.HigherIsBetter, n,
                Result(c.Low, b[c.Low]), Result(c.Mid, b[c.Mid]), Result(c.High, b[c.High]),
                SuperficialPortion.Estimate(b[c.Low], b[c.Mid], b[c.High])));
        }
        return new ComparisonResults(c, keys, alpha, sweepOf, rows);
    }

    // Records in the order of the task's examples, so that index i is the same example for every variant.
    static PredictionRecord[] Align(TaskPredictions t, string variant)
    {
        var byId = t.RecordsByVariant[variant].ToDictionary(r => r.Id, StringComparer.Ordinal);
        return t.ExampleIdsFor(variant).Select(id => byId.TryGetValue(id, out var r) ? r
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
