using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Stats;

namespace Superficial.Organism;

/// <summary>
/// Replication across organisms: the portions of one comparison measured on organisms built from different world
/// seeds, per seed and pooled. Per seed, the figures are the run's own (its summary.json, as its report shows them).
/// Pooled: every seed's examples together (each organism's own variants scored on its own examples), one paired
/// bootstrap over all of them read from the prediction files (predictions/&lt;task&gt;/&lt;variant&gt;.jsonl, one
/// {"id", "score"} per example), so the pooled interval reflects n = the sum of the seeds' examples. A pooled portion
/// is undefined when the portion is undefined on any seed: pooling would take a share of a change that organism does not show.
/// </summary>
public static class Replication
{
    /// <summary>One task's portion on one organism (Seed = null: pooled over the organisms).</summary>
    public sealed record Row(string Task, int? Seed, int N, double Low, double Mid, double High, PortionEstimate Portion);

    /// <summary>The rows of the comparison named <paramref name="comparison"/> (e.g. "superficial", "transfer") per run and pooled.</summary>
    public static IReadOnlyList<Row> Compute(IReadOnlyList<(int Seed, string EvalDir)> runs, IReadOnlyList<string> tasks,
        string comparison, int resamples = PairedBootstrap.DefaultResamples, int seed = 0)
    {
        if (runs.Count == 0) throw new ArgumentException("no runs to compare.", nameof(runs));
        var found = runs.Select(r => (r.Seed, r.EvalDir, Results: Find(r.EvalDir, comparison))).ToList();
        var c = found[0].Results.Comparison;
        var rows = new List<Row>();
        foreach (var task in tasks)
        {
            var pooled = new List<double>[] { [], [], [] };
            var undefinedOn = new List<int>();
            foreach (var (s, dir, results) in found)
            {
                var t = results.Tasks.FirstOrDefault(x => x.Task == task)
                    ?? throw new InvalidDataException($"{dir}: comparison {comparison} has no task {task}.");
                rows.Add(new Row(task, s, t.N, t.Low.Mean, t.Mid.Mean, t.High.Mean, t.Portion));
                if (t.Portion.Value is null) undefinedOn.Add(s);
                var series = Paired(dir, task, [c.Low, c.Mid, c.High]);
                for (int v = 0; v < 3; v++) pooled[v].AddRange(series[v]);
            }
            if (runs.Count == 1) continue;
            var means = PairedBootstrap.Means(pooled, resamples, PairedBootstrap.SeedFor(seed, task));
            var portion = undefinedOn.Count == 0 ? SuperficialPortion.Estimate(means[0], means[1], means[2])
                : SuperficialPortion.UndefinedOnSomeRuns($"undefined on seed {string.Join(", ", undefinedOn)}");
            rows.Add(new Row(task, null, means[0].N, means[0].Mean, means[1].Mean, means[2].Mean, portion));
        }
        return rows;
    }

    static ComparisonResults Find(string evalDir, string name)
    {
        var summary = EvalSummary.Load(evalDir);
        return new[] { summary.Main }.Concat(summary.Comparisons).FirstOrDefault(x => x?.Comparison.Name == name)
            ?? throw new InvalidDataException($"{evalDir}: the evaluation has no comparison named {name}.");
    }

    /// <summary>The variants' scores on the examples all of them have, in one order (by id).</summary>
    static IReadOnlyList<double>[] Paired(string evalDir, string task, IReadOnlyList<string> variants)
    {
        var scores = variants.Select(v =>
        {
            var path = Path.Combine(evalDir, "predictions", task, v + ".jsonl");
            if (!File.Exists(path)) throw new FileNotFoundException($"{path} not found: the run in {evalDir} has no {v} predictions for {task}.");
            var d = new Dictionary<string, double>();
            int line = 0;
            foreach (var l in File.ReadLines(path))
            {
                line++;
                if (string.IsNullOrWhiteSpace(l)) continue;
                var o = JsonNode.Parse(l) as JsonObject ?? throw new InvalidDataException($"{path}:{line}: not a JSON object.");
                if (o["id"] is not JsonValue id || o["score"] is not JsonValue score)
                    throw new InvalidDataException($"{path}:{line}: expected \"id\" and a numeric \"score\".");
                d[id.ToString()] = score.GetValue<double>();
            }
            return d;
        }).ToList();
        var ids = scores[0].Keys.Where(k => scores.All(s => s.ContainsKey(k))).Order(StringComparer.Ordinal).ToList();
        if (ids.Count == 0) throw new InvalidDataException($"{evalDir}: {task} has no example scored for all of {string.Join(", ", variants)}.");
        return scores.Select(s => (IReadOnlyList<double>)ids.Select(i => s[i]).ToList()).ToArray();
    }

    static string Fmt(double x) => x.ToString("0.00", CultureInfo.InvariantCulture);
    static string Cell(PortionEstimate p) => p.Value is { } v && p.Ci95 is { } ci ? $"{Fmt(v)} [{Fmt(ci.Low)}, {Fmt(ci.High)}]" : "undefined";

    /// <summary>The table as Markdown: one row per task, one column per seed and one pooled (portion [95% CI], n).</summary>
    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var seeds = rows.Where(r => r.Seed is not null).Select(r => r.Seed!.Value).Distinct().Order().ToList();
        bool pooled = rows.Any(r => r.Seed is null);
        var sb = new StringBuilder();
        sb.AppendLine("| task | " + string.Join(" | ", seeds.Select(s => $"seed {s}")) + (pooled ? " | pooled |" : " |"));
        sb.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" --- |", seeds.Count + (pooled ? 1 : 0))));
        foreach (var task in rows.Select(r => r.Task).Distinct())
        {
            var cells = seeds.Select(s => rows.First(r => r.Task == task && r.Seed == s)).ToList();
            if (pooled) cells.Add(rows.First(r => r.Task == task && r.Seed is null));
            sb.AppendLine($"| {task} | " + string.Join(" | ", cells.Select(r => $"{Cell(r.Portion)} (n = {r.N})")) + " |");
        }
        var undefined = rows.Where(r => r.Portion.Value is null).ToList();
        if (undefined.Count > 0) sb.AppendLine();
        foreach (var r in undefined)
            sb.AppendLine($"- {r.Task}, {(r.Seed is { } s ? $"seed {s}" : "pooled")}: {r.Portion.Note}");
        return sb.ToString();
    }

    public static JsonObject ToJson(IReadOnlyList<Row> rows, (string Low, string Mid, string High) comparison) => new()
    {
        ["comparison"] = new JsonObject { ["low"] = comparison.Low, ["mid"] = comparison.Mid, ["high"] = comparison.High },
        ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
        {
            ["task"] = r.Task, ["seed"] = r.Seed is { } s ? s : "pooled", ["n"] = r.N,
            [comparison.Low] = r.Low, [comparison.Mid] = r.Mid, [comparison.High] = r.High,
            ["portion"] = r.Portion.Value, ["portion_ci95"] = r.Portion.Ci95 is { } ci ? new JsonArray(ci.Low, ci.High) : null,
            ["portion_note"] = r.Portion.Note,
        }).ToArray()),
    };
}
