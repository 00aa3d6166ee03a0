using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Superficial.Evaluation.Stats;

namespace Superficial.Organism;

/// <summary>
/// Replication across organisms: the superficial portion of each task measured on organisms built from
/// different world seeds, per seed and pooled, read from each run's prediction files
/// (predictions/&lt;task&gt;/&lt;variant&gt;.jsonl, one {"id", "score"} per example). Pooled: every seed's
/// examples together (each organism's own base, head and aligned model scored on its own examples), one
/// paired bootstrap over all of them, so the pooled interval reflects n = the sum of the seeds' examples.
/// </summary>
public static class Replication
{
    /// <summary>One task's portion on one organism (Seed = null: pooled over the organisms).</summary>
    public sealed record Row(string Task, int? Seed, int N, double Low, double Mid, double High, PortionEstimate Portion);

    public static IReadOnlyList<Row> Compute(IReadOnlyList<(int Seed, string EvalDir)> runs, IReadOnlyList<string> tasks,
        (string Low, string Mid, string High) comparison, int resamples = PairedBootstrap.DefaultResamples, int seed = 0)
    {
        if (runs.Count == 0) throw new ArgumentException("no runs to compare.", nameof(runs));
        var rows = new List<Row>();
        foreach (var task in tasks)
        {
            var pooled = new List<double>[] { [], [], [] };
            foreach (var (s, dir) in runs)
            {
                var series = Paired(dir, task, [comparison.Low, comparison.Mid, comparison.High]);
                for (int v = 0; v < 3; v++) pooled[v].AddRange(series[v]);
                rows.Add(Estimate(task, s, series, resamples, PairedBootstrap.SeedFor(seed + s, task)));
            }
            if (runs.Count > 1) rows.Add(Estimate(task, null, pooled, resamples, PairedBootstrap.SeedFor(seed, task)));
        }
        return rows;
    }

    static Row Estimate(string task, int? s, IReadOnlyList<IReadOnlyList<double>> series, int resamples, int bootstrapSeed)
    {
        var means = PairedBootstrap.Means(series, resamples, bootstrapSeed);
        return new Row(task, s, means[0].N, means[0].Mean, means[1].Mean, means[2].Mean, SuperficialPortion.Estimate(means[0], means[1], means[2]));
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
