using Superficial.Evaluation;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Stats;

namespace Superficial.Analysis;

/// <summary>One head evaluated as a base + head variant: its file, its variant name in the eval folder, rank and seed.</summary>
public sealed record EvaluatedHead(string Path, string Variant, string Rank, int? Seed, double? HeldOutKl);

/// <summary>One task's portion with each head and their combination, per group of heads of the same rank.</summary>
public sealed record TaskStability(string Task, string Metric, int N, string Rank, IReadOnlyList<string> Variants,
    IReadOnlyList<PortionEstimate> PerHead, SpreadEstimate? Spread, string Note);

/// <summary>
/// The superficial portion across several heads from one evaluation folder (eval with several --head):
/// base, aligned and every head's base + head variant were scored on the same prompts, so one paired bootstrap
/// (the evaluation's own seed and resample count, as <see cref="SummaryBuilder"/> draws them) gives every
/// head's portion on the same prompt resamples, which <see cref="HeadSpread"/> combines. Heads are grouped
/// by rank: within a group the spread is head-to-head (seed) variation; across groups it is portion vs rank.
/// </summary>
public static class StabilityAnalysis
{
    public static IReadOnlyList<TaskStability> FromEval(string evalDir, IReadOnlyList<EvaluatedHead> heads, string low = "base", string high = "aligned")
    {
        var summary = EvalSummary.Load(evalDir);
        var result = new List<TaskStability>();
        foreach (var t in summary.Tasks)
        {
            var need = new[] { low, high }.Concat(heads.Select(h => h.Variant)).ToArray();
            var records = need.ToDictionary(v => v, v => PredictionFile.Read(PredictionFile.PathFor(evalDir, t.Task, v)));
            var missing = need.Where(v => records[v].Count == 0).ToArray();
            if (missing.Length > 0)
                throw new InvalidDataException($"{evalDir}: task {t.Task} has no predictions for {string.Join(", ", missing)}; evaluate every head (eval --head H1 H2 ...) first.");
            // the examples in the evaluation's order (the base variant's file), as the summary bootstrapped them; a head
            // evaluated on only the first n examples (a variant limit) limits every head's portion to those, as in the summary
            var n = need.Min(v => t.Variant(v)?.N ?? records[v].Count);
            var ids = records[low].Select(r => r.Id).Take(n).ToArray();
            var series = need.Select(v =>
            {
                var byId = records[v].ToDictionary(r => r.Id, r => r.Score, StringComparer.Ordinal);
                return (IReadOnlyList<double>)ids.Select(id => byId.TryGetValue(id, out var s) ? s
                    : throw new InvalidDataException($"{evalDir}: task {t.Task}, variant {v} lacks example {id}.")).ToArray();
            }).ToArray();
            var means = PairedBootstrap.Means(series, summary.BootstrapResamples, PairedBootstrap.SeedFor(summary.Seed, t.Task));
            var lo = means[0]; var hi = means[1];
            foreach (var group in heads.Select((h, i) => (h, i)).GroupBy(x => x.h.Rank))
            {
                var members = group.ToArray();
                var portions = members.Select(x => SuperficialPortion.Estimate(lo, means[2 + x.i], hi)).ToArray();
                SpreadEstimate? spread = null;
                string note = portions[0].Note;
                if (portions.All(p => p.Value is not null))
                {
                    double diff = hi.Mean - lo.Mean;
                    var reps = members.Select(x => (IReadOnlyList<double>)Enumerable.Range(0, lo.Replicates.Count).Select(r =>
                    {
                        double d = hi.Replicates[r] - lo.Replicates[r];
                        return Math.Abs(d) < SuperficialPortion.Epsilon || Math.Sign(d) != Math.Sign(diff) ? double.NaN
                            : (means[2 + x.i].Replicates[r] - lo.Replicates[r]) / d;
                    }).ToArray()).ToArray();
                    spread = HeadSpread.Combine(portions.Select(p => p.Value!.Value).ToArray(), reps, PairedBootstrap.SeedFor(summary.Seed, t.Task + "#heads"));
                }
                else note = "portion undefined: " + portions.First(p => p.Value is null).Note;
                result.Add(new TaskStability(t.Task, t.Metric, ids.Length, group.Key, members.Select(x => x.h.Variant).ToArray(), portions, spread, note));
            }
        }
        return result;
    }
}
