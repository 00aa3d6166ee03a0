using System.Globalization;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Report;

/// <summary>Options of the report: how many example generations per task, and how long each may be.</summary>
public sealed record ReportOptions(int ExamplesPerTask = 3, int MaxOutputChars = 2500, string Title = "Superficial knowledge in alignment: evaluation report");

/// <summary>Decides the report's content from a run's summary and prediction files.</summary>
public sealed class ReportBuilder(EvalSummary summary, string runDir, ReportOptions options)
{
    readonly List<ReportBlock> _blocks = [];
    int _figure;

    public IReadOnlyList<ReportBlock> Build()
    {
        _blocks.Add(new Heading(1, options.Title, "top"));
        Intro();
        if (summary.Main is { } main) ComparisonSection(main, 2, "Headline: " + Describe(main.Comparison), isMain: true);
        else Add(new Paragraph("No comparison was evaluated, so there is no superficial portion; every variant's metric is listed per task below.", Muted: true));
        TaskSections();
        var further = summary.Comparisons.Where(c => c.SweepOf is null).ToArray();
        if (further.Length > 0)
        {
            Add(new Heading(2, "Further comparisons", "comparisons"));
            foreach (var c in further) ComparisonSection(c, 3, $"{c.Comparison.Name}: {Describe(c.Comparison)}", isMain: false);
        }
        var sweeps = summary.Comparisons.Where(c => c.SweepOf is not null && c.Alpha is not null).GroupBy(c => c.SweepOf!).ToArray();
        if (sweeps.Length > 0)
        {
            Add(new Heading(2, "Alpha sweeps", "alpha"));
            Add(new Paragraph("Each point is the middle variant with its superficial head scaled by alpha (alpha = 1 is the trained head as evaluated in the comparison itself). " +
                              "The table reads as a trade-off: how much of each task's low → high change a given alpha reaches.", Muted: true));
            foreach (var g in sweeps)
            {
                // The unscaled comparison is the alpha = 1 point of its own sweep, unless it was run explicitly.
                var parent = new[] { summary.Main }.Concat(summary.Comparisons).FirstOrDefault(c => c?.Comparison.Name == g.Key && c.SweepOf is null);
                var points = g.ToList();
                if (parent is not null && points.All(p => p.Alpha != 1)) points.Add(parent with { Alpha = 1 });
                AlphaSection(g.Key, points.OrderBy(c => c.Alpha).ToArray());
            }
        }
        RunDetails();
        return _blocks;
    }

    void Add(ReportBlock b) => _blocks.Add(b);

    void Intro()
    {
        if (summary.Main is { Tasks.Count: > 0 } main) Add(new Paragraph(Takeaway(main)));
        var variants = OrderVariants(summary.Tasks.SelectMany(t => t.Variants.Select(v => v.Variant)).Distinct());
        Add(new Paragraph($"{summary.Tasks.Count} task(s): {string.Join(", ", summary.Tasks.Select(t => t.Task))}. " +
                          $"Variants: {string.Join(", ", variants)}."));
        Add(new Paragraph("Every metric is the mean of per-example scores. Intervals are 95% percentile intervals of a paired bootstrap over examples " +
                          $"({summary.BootstrapResamples} resamples, seed {summary.Seed}): each resample draws one set of example indices used for all variants. " +
                          "The portion (mid − low) / (high − low) is undefined when high and low are not distinguishable: |high − low| < 1e-9, " +
                          "or the paired 95% interval of high − low contains 0.", Muted: true));
    }

    /// <summary>One paragraph, from the numbers: which tasks the head carries (portion with its interval) and what it costs elsewhere.</summary>
    static string Takeaway(ComparisonResults main)
    {
        var c = main.Comparison;
        var shares = main.Tasks.Where(IsShare).Select(t =>
        {
            if (t.Portion.Value is not double v || t.Portion.Ci95 is not { } ci)
                return $"{t.Task}: portion undefined ({System.Text.RegularExpressions.Regex.Replace(t.Portion.Note, "^undefined:\\s*", "").TrimEnd('.')})";
            var verdict = ci.Low >= 0.5 ? "largely superficial" : ci.High < 0.5 ? "mostly not superficial"
                : ci.Width > 1 ? "too uncertain to say (the interval is wider than 1)" : "partly superficial (the interval spans 0.5)";
            return $"{t.Task} {ReportFormat.Fixed(v, "0.00")} [{ReportFormat.Fixed(ci.Low, "0.00")}, {ReportFormat.Fixed(ci.High, "0.00")}]: {verdict}";
        }).ToArray();
        var costs = main.Tasks.Where(t => !IsShare(t)).Select(t =>
            $"{t.Task} is a cost, not a share: {c.Mid}'s {t.Metric} differs from {c.High}'s by {Signed(t.Mid.Mean - t.High.Mean)} " +
            $"({(t.HigherIsBetter ? "higher" : "lower")} is better)").ToArray();
        var text = $"Takeaway: the portion of the {c.Low} → {c.High} change that {c.Mid} reaches, per task (95% interval): {string.Join("; ", shares)}.";
        if (costs.Length > 0) text += " " + string.Join(". ", costs) + ".";
        return text;
    }

    static string Signed(double x) => ReportFormat.Signed(x);
    static bool IsShare(ComparisonTaskResult t) => ReportFormat.IsShare(t);
    static string PortionOrCost(ComparisonTaskResult t, Comparison c) => ReportFormat.PortionOrCost(t, c);

    /// <summary>Variants in reading order: as the comparisons name them (low, mid, high), alpha sweeps by alpha, then any others.</summary>
    IReadOnlyList<string> OrderVariants(IEnumerable<string> names)
    {
        var rank = new Dictionary<string, int>();
        foreach (var c in new[] { summary.Main }.Concat(summary.Comparisons).Where(c => c is not null))
            foreach (var v in c!.Comparison.Variants)
            {
                var baseName = Comparison.TryParseAlpha(v, out var b, out _) ? b : v;
                rank.TryAdd(baseName, rank.Count);
            }
        var list = names.ToList();
        return list.Select((v, i) =>
            {
                var has = Comparison.TryParseAlpha(v, out var b, out var a);
                return (v, Rank: rank.TryGetValue(has ? b : v, out var r) ? r : rank.Count + i, Alpha: has ? a : 1.0);
            })
            .OrderBy(x => x.Rank).ThenBy(x => x.Alpha).Select(x => x.v).ToArray();
    }

    static string Describe(Comparison c) => $"{c.Low} → {c.Mid} → {c.High}";
    static string Direction(bool higherIsBetter) => higherIsBetter ? "↑" : "↓";
    static string TaskLabel(string task, string metric, bool hib) => $"{task}\n{metric} {Direction(hib)}";
    IReadOnlyList<string> Notes(string task) => summary.Tasks.FirstOrDefault(t => t.Task == task)?.Notes ?? [];

    void ComparisonSection(ComparisonResults c, int level, string title, bool isMain)
    {
        var cmp = c.Comparison;
        Add(new Heading(level, title, "cmp-" + cmp.Name));
        var rows = c.Tasks.Select(t => (IReadOnlyList<string>)
        [
            t.Task, $"{t.Metric} {Direction(t.HigherIsBetter)}", t.N.ToString(CultureInfo.InvariantCulture),
            ReportFormat.WithInterval(t.Low.Mean, t.Low.Ci95), ReportFormat.WithInterval(t.Mid.Mean, t.Mid.Ci95),
            ReportFormat.WithInterval(t.High.Mean, t.High.Ci95), PortionOrCost(t, cmp), string.Join("; ", Notes(t.Task)),
        ]).ToArray();
        Add(new Table(["task", "metric", "n", cmp.Low, cmp.Mid, cmp.High, "portion", "notes"], rows,
            $"Portion = ({cmp.Mid} − {cmp.Low}) / ({cmp.High} − {cmp.Low}); ↑ higher is better, ↓ lower is better."));
        if (c.Tasks.Count == 0) return;

        // One panel per scale: rates in [0, 1] together, every other metric (e.g. NLL per character) on its own axis,
        // so a metric of 2.5-3.5 does not flatten every rate beside it.
        var shares = c.Tasks.Where(IsShare).ToArray();
        var panels = (shares.Length > 0 ? new[] { (File: "metrics", Tasks: shares) } : [])
            .Concat(c.Tasks.Where(t => !IsShare(t)).Select(t => (File: "metric-" + t.Task, Tasks: new[] { t }))).ToArray();
        foreach (var (file, tasks) in panels)
        {
            var values = tasks.Select(t => (IReadOnlyList<BarValue>)
                [new BarValue(t.Low.Mean, t.Low.Ci95), new BarValue(t.Mid.Mean, t.Mid.Ci95), new BarValue(t.High.Mean, t.High.Ci95)]).ToArray();
            var names = string.Join(", ", tasks.Select(t => t.Task));
            Chart($"{cmp.Name}-{file}.png",
                ReportCharts.GroupedBars(tasks.Length == 1 && !IsShare(tasks[0]) ? $"{cmp.Name}: {tasks[0].Task} ({tasks[0].Metric})" : $"{cmp.Name}: metric per task",
                    tasks.Select(t => TaskLabel(t.Task, t.Metric, t.HigherIsBetter)).ToArray(), [cmp.Low, cmp.Mid, cmp.High], values),
                $"Bar chart of {cmp.Low}, {cmp.Mid} and {cmp.High} for {names}",
                $"{(IsShare(tasks[0]) ? "Rates" : tasks[0].Metric)} per variant for {names}; whiskers are 95% paired-bootstrap intervals.");
        }
        if (shares.Length > 0)
            Chart($"{cmp.Name}-portion.png",
                ReportCharts.Portions($"{cmp.Name}: portion per task", shares.Select(t => TaskLabel(t.Task, t.Metric, t.HigherIsBetter)).ToArray(),
                    shares.Select(t => t.Portion).ToArray()),
                $"Portion per task for {cmp.Name}",
                $"({cmp.Mid} − {cmp.Low}) / ({cmp.High} − {cmp.Low}) per task with its 95% interval; a grey cross marks an undefined portion (reason below). " +
                (shares.Length < c.Tasks.Count ? "Tasks whose metric is not a rate are costs, not shares, and are left off this axis (see the table)." : ""));
        Add(new Table(["task", "portion", "why / what it rests on"],
            c.Tasks.Select(t => (IReadOnlyList<string>)[t.Task, PortionOrCost(t, cmp),
                IsShare(t) ? t.Portion.Note : $"{t.Metric} is not a rate in [0, 1]: its (mid − low) / (high − low) is not a share of the alignment, so the change against {cmp.High} is shown instead."]).ToArray()));
    }

    void Chart(string file, byte[] png, string alt, string caption)
    {
        _figure++;
        Add(new Figure($"{_figure:00}-{Slug(file)}", png, alt, $"Figure {_figure}. {caption}"));
    }

    static string Slug(string s) => new(s.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '-' ? ch : '_').ToArray());

    void TaskSections()
    {
        Add(new Heading(2, "Per task", "tasks"));
        foreach (var t in summary.Tasks)
        {
            Add(new Heading(3, $"{t.Task}: {t.Metric} {Direction(t.HigherIsBetter)} (n = {t.N})", "task-" + t.Task));
            if (t.Notes.Count > 0) Add(new BulletList(t.Notes));
            // side variants evaluated on fewer examples (a variant limit) say how many
            if (t.Variants.All(v => v.N == t.N))
                Add(new Table(["variant", "mean", "95% CI"],
                    t.Variants.Select(v => (IReadOnlyList<string>)[v.Variant, ReportFormat.Number(v.Mean), ReportFormat.Interval(v.Ci95)]).ToArray()));
            else
                Add(new Table(["variant", "n", "mean", "95% CI"],
                    t.Variants.Select(v => (IReadOnlyList<string>)[v.Variant, v.N.ToString(CultureInfo.InvariantCulture), ReportFormat.Number(v.Mean), ReportFormat.Interval(v.Ci95)]).ToArray(),
                    $"Variants with n < {t.N} were evaluated on the first n examples only; a comparison rests on the examples all three of its variants saw."));
            if (t.Groups.Count > 0)
            {
                var variants = t.Variants.Where(v => t.Groups[0].Means.ContainsKey(v.Variant)).Select(v => v.Variant).ToArray();
                var caption = $"{t.Metric} per group (mean over the group's examples).";
                if (t.Notes.Count > 0) caption += " " + string.Join("; ", t.Notes) + ".";
                Add(new Table(["group", "n", .. variants],
                    t.Groups.Select(g => (IReadOnlyList<string>)
                        [g.Group, g.N.ToString(CultureInfo.InvariantCulture), .. variants.Select(v => g.Means.TryGetValue(v, out var m) ? ReportFormat.Number(m) : "")]).ToArray(),
                    caption));
            }
            Examples(t);
        }
    }

    void Examples(TaskResults t)
    {
        if (options.ExamplesPerTask <= 0) return;
        var shown = summary.Main is { } m && t.Variant(m.Comparison.Low) is not null && t.Variant(m.Comparison.Mid) is not null && t.Variant(m.Comparison.High) is not null
            ? m.Comparison.Variants
            : t.Variants.Select(v => v.Variant).Take(4).ToArray();
        var files = shown.Select(v => (Variant: v, Path: PredictionFile.PathFor(runDir, t.Task, v))).ToArray();
        var missing = files.Where(f => !File.Exists(f.Path)).Select(f => f.Path).ToArray();
        if (missing.Length > 0)
        {
            Add(new Paragraph($"Example generations are not shown: missing {string.Join(", ", missing)}.", Muted: true));
            return;
        }
        var records = files.Select(f => PredictionFile.Read(f.Path).ToDictionary(r => r.Id, StringComparer.Ordinal)).ToArray();
        var ids = PredictionFile.Read(files[0].Path).Select(r => r.Id).Where(id => records.All(d => d.ContainsKey(id))).ToArray();
        // Examples on which the variants' scores differ say the most about what changed; fill up with the first others.
        bool Differs(string id) => records.Select(d => d[id].Score).Distinct().Count() > 1;
        var chosen = ids.Where(Differs).Take(options.ExamplesPerTask).ToHashSet();
        foreach (var id in ids)
        {
            if (chosen.Count >= options.ExamplesPerTask) break;
            chosen.Add(id);
        }
        var picked = ids.Where(chosen.Contains).ToArray();
        if (picked.Length == 0) return;
        Add(new Paragraph($"Example generations ({picked.Length} of {ids.Length}; examples where the variants' scores differ first):", Muted: true));
        for (var k = 0; k < picked.Length; k++)
        {
            var id = picked[k];
            var prompts = shown.Select((v, i) => (v, records[i][id].Prompt)).GroupBy(x => x.Prompt)
                .Select(g => new ExamplePrompt($"Prompt as {string.Join(", ", g.Select(x => x.v))} read it", g.Key)).ToArray();
            var outputs = shown.Select((v, i) => new ExampleOutput(v, Clip(records[i][id].Output), records[i][id].Score)).ToArray();
            Add(new ExampleBlock($"{t.Task} · {id}", prompts, outputs, Open: k == 0));
        }
    }

    string Clip(string s) => s.Length <= options.MaxOutputChars ? s
        : s[..options.MaxOutputChars] + $"\n… (cut here for the report; {s.Length} characters in all)";

    void AlphaSection(string sweepOf, IReadOnlyList<ComparisonResults> points)
    {
        var first = points[0].Comparison;
        var baseMid = Comparison.TryParseAlpha(first.Mid, out var b, out _) ? b : first.Mid;
        Add(new Heading(3, $"{sweepOf}: {baseMid} with its head scaled by alpha", "alpha-" + sweepOf));
        var tasks = points[0].Tasks.Select(t => t.Task).ToArray();
        Add(new Table(["alpha", .. tasks.SelectMany(t => new[] { $"{t} metric", $"{t} portion" })],
            points.Select(p => (IReadOnlyList<string>)
            [
                p.Alpha!.Value.ToString("0.###", CultureInfo.InvariantCulture),
                .. p.Tasks.SelectMany(t => new[] { ReportFormat.WithInterval(t.Mid.Mean, t.Mid.Ci95), ReportFormat.Portion(t.Portion) }),
            ]).ToArray(),
            $"Portion = (variant − {first.Low}) / ({first.High} − {first.Low}) per task."));
        Chart($"{sweepOf}-alpha-portions.png",
            ReportCharts.PortionCurves($"{sweepOf}: portion per task vs alpha", points.Select(p => p.Alpha!.Value).ToArray(),
                tasks.Select(t => (t, (IReadOnlyList<PortionEstimate>)points.Select(p => p.Tasks.First(x => x.Task == t).Portion).ToArray())).ToArray()),
            $"{sweepOf}: portion against alpha",
            "Portion per task against alpha, with 95% intervals: where safety gains and utility losses trade off. Undefined portions are not drawn.");
        foreach (var task in tasks)
        {
            var rows = points.Select(p => (Alpha: p.Alpha!.Value, Row: p.Tasks.First(t => t.Task == task))).ToArray();
            var r0 = rows[0].Row;
            Chart($"{sweepOf}-alpha-{task}.png",
                ReportCharts.AlphaCurve($"{task}: {r0.Metric} {Direction(r0.HigherIsBetter)} vs alpha", r0.Metric,
                    rows.Select(x => x.Alpha).ToArray(), rows.Select(x => new BarValue(x.Row.Mid.Mean, x.Row.Mid.Ci95)).ToArray(),
                    (r0.Low.Variant, r0.Low.Mean), (r0.High.Variant, r0.High.Mean)),
                $"{task}: {r0.Metric} against alpha",
                $"{task}: {r0.Metric} of {baseMid} scaled by alpha, with 95% intervals; dashed lines are {r0.Low.Variant} and {r0.High.Variant}.");
        }
    }

    void RunDetails()
    {
        Add(new Heading(2, "Run details", "run"));
        KeyValues("Models", summary.Models);
        KeyValues("Data sources", summary.DataSources);
        KeyValues("Settings", summary.Settings);
        KeyValues("Runner", summary.Runner);
        if (summary.Timings.Count > 0)
            Add(new Table(["task", "variant", "examples run", "generation s", "scoring s"],
                summary.Timings.Select(t => (IReadOnlyList<string>)
                [
                    t.Task, t.Variant, t.ExamplesRun.ToString(CultureInfo.InvariantCulture),
                    t.GenerateSeconds.ToString("0.0", CultureInfo.InvariantCulture), t.ScoreSeconds.ToString("0.0", CultureInfo.InvariantCulture),
                ]).ToArray(),
                (summary.Shards.Count > 0 ? $"Time spent by the last run of each of {summary.Shards.Count} shards, added up" : "Time spent by the last run") +
                $" (examples recorded by earlier, interrupted runs are not counted); total {summary.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s."));
    }

    void KeyValues(string title, IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> map) =>
        KeyValues(title, map.ToDictionary(kv => kv.Key, kv => kv.Value switch
        {
            null => "",
            System.Text.Json.Nodes.JsonValue v when v.TryGetValue<string>(out var str) => str,
            var n => n.ToJsonString(),
        }));

    void KeyValues(string title, IReadOnlyDictionary<string, string> map)
    {
        if (map.Count == 0) return;
        Add(new Table([title, "value"], map.Select(kv => (IReadOnlyList<string>)[kv.Key, kv.Value]).ToArray()));
    }
}
