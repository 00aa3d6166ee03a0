using System.Globalization;
using System.Text.Json.Nodes;
using Superficial.Evaluation.Report;
using Superficial.IO;

namespace Superficial.Analysis;

/// <summary>
/// analysis.md and analysis.html (charts in analysis_files/, and inline in the HTML) from an analysis folder's
/// analysis.json alone: token shift, depth, which tokens, head anatomy, stability across heads, prefill probe.
/// </summary>
public static class AnalysisReport
{
    public const string ChartFolder = "analysis_files";
    const string Title = "Superficial knowledge: how deep, which tokens, how many dimensions, how stable";
    /// <summary>Per-position curves show positions reached by at least this many responses (all are in analysis.json).</summary>
    const int MinPlotted = 10;

    public static ReportFiles Write(string dir)
    {
        var path = Path.Combine(dir, AnalysisSummary.FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} not found: run superficial analyze first.");
        var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        var blocks = Build(root);
        Directory.CreateDirectory(Path.Combine(dir, ChartFolder));
        var charts = new List<string>();
        foreach (var f in blocks.OfType<Figure>())
        {
            var p = Path.Combine(dir, ChartFolder, f.FileName);
            Superficial.IO.AtomicFile.WriteAllBytes(p, f.Png);
            charts.Add(p);
        }
        var md = Path.Combine(dir, "analysis.md");
        var html = Path.Combine(dir, "analysis.html");
        AtomicFile.WriteAllText(md, MarkdownRenderer.Render(Title, blocks, ChartFolder));
        AtomicFile.WriteAllText(html, HtmlRenderer.Render(Title, blocks));
        return new ReportFiles(md, html, charts);
    }

    static string N(JsonNode? x, string fmt = "0.000") => x is null ? "n/a" : ((double)x).ToString(fmt, CultureInfo.InvariantCulture);
    static string Ci(JsonNode? ci, string fmt = "0.000") => ci is JsonArray a && a.Count == 2 ? $"[{N(a[0], fmt)}, {N(a[1], fmt)}]" : "";
    static double D(JsonNode? x) => x is null ? double.NaN : (double)x;
    static string Tok(JsonNode? t) => "\"" + ((string?)t ?? "").Replace("\n", "\\n").Replace("\t", "\\t") + "\"";

    public static IReadOnlyList<ReportBlock> Build(JsonObject root)
    {
        var b = new List<ReportBlock> { new Heading(1, Title, "top") };
        if (root["throughput"] is JsonObject tp)
            b.Add(new Paragraph($"{tp["positions"]} positions analysed in {N(tp["seconds"], "0.0")} s ({N(tp["positions_per_second"], "0")} positions/s). " +
                                $"Inputs: {root["inputs"]?.ToJsonString()}", Muted: true));
        if (root["token_shift"] is JsonObject ts) TokenShiftSection(b, ts);
        if (root["depth"] is JsonObject depth) DepthSection(b, depth);
        if (root["tokens"] is JsonObject tokens) TokensSection(b, tokens);
        if (root["anatomy"] is JsonObject anatomy) AnatomySection(b, anatomy);
        if (root["heads"] is JsonArray heads && heads.Count > 0) HeadsSection(b, heads, root["stability"] as JsonArray);
        if (root["prefill"] is JsonObject prefill) PrefillSection(b, prefill);
        return b;
    }

    static void TokenShiftSection(List<ReportBlock> b, JsonObject ts)
    {
        b.Add(new Heading(2, "Token shift: where the aligned model departs from the base", "token-shift"));
        b.Add(new Paragraph($"{ts["definition"]}. Positions: {ts["split"]}. Intervals: {ts["interval"]}.", Muted: true));
        var rows = new List<IReadOnlyList<string>>();
        foreach (var t in ts["tasks"]!.AsArray())
            foreach (var model in new[] { "base", "head" })
            {
                var c = t![model]!;
                rows.Add([(string)t["task"]!, model == "base" ? "base" : "base+head", t["n"]!.ToString(), t["responses"]!.ToString(),
                    .. TokenShift.Names.Select(n => $"{N(c[n]!["fraction"])} {Ci(c[n]!["ci95"])} ({c[n]!["count"]})")]);
            }
        b.Add(new Table(["task", "model", "n positions", "responses", "unshifted", "marginal", "shifted"], rows,
            "Fraction of positions by the rank of the aligned model's greedy token in the model's distribution, 95% interval, (count)."));
        foreach (var t in ts["tasks"]!.AsArray())
        {
            var task = (string)t!["task"]!;
            var byPos = t["by_position"]!.AsArray();
            var ticks = byPos.Select((p, i) => ((double)i, (string)p!["bucket"]!)).ToArray();
            var xs = byPos.Select((_, i) => (double)i).ToArray();
            LineSeries S(string model, string cat, string label) => new(label, xs,
                byPos.Select(p => D(p![model]![cat]!["fraction"])).ToArray(),
                byPos.Select(p => D(p![model]![cat]!["ci95"]![0])).ToArray(), byPos.Select(p => D(p![model]![cat]!["ci95"]![1])).ToArray());
            b.Add(new Figure($"shift-{task}.png", AnalysisCharts.Lines($"{task}: token shift by position in the response", "position (bucket)", "fraction of positions",
                [S("base", "shifted", "shifted (base)"), S("head", "shifted", "shifted (base+head)"), S("base", "unshifted", "unshifted (base)"), S("head", "unshifted", "unshifted (base+head)")],
                xTicks: ticks), $"token shift vs position, {task}",
                $"{task}: fraction of shifted and unshifted tokens by position bucket, base and base + head, with 95% intervals (n per bucket in the table)."));
            b.Add(new Table(["position", "n", "responses", "base: unshifted / marginal / shifted", "base+head: unshifted / marginal / shifted"],
                byPos.Select(p => (IReadOnlyList<string>)[(string)p!["bucket"]!, p["n"]!.ToString(), p["responses"]!.ToString(),
                    string.Join(" / ", TokenShift.Names.Select(n => N(p["base"]![n]!["fraction"]))),
                    string.Join(" / ", TokenShift.Names.Select(n => N(p["head"]![n]!["fraction"])))]).ToArray(), $"{task}: token shift by position"));
        }
    }

    static void DepthSection(List<ReportBlock> b, JsonObject depth)
    {
        b.Add(new Heading(2, "Depth: how far into the response the alignment reaches", "depth"));
        b.Add(new Paragraph($"{depth["definition"]}. Tokens deep: {depth["tokens_deep_definition"]}. Intervals: {depth["interval"]}.", Muted: true));
        var tasks = depth["tasks"]!.AsArray();
        b.Add(new Table(["task", "n positions", "responses", "KL(aligned‖base)", "KL(aligned‖base+head)", "gap closed", "tokens deep", "last high position"],
            tasks.Select(t => (IReadOnlyList<string>)[(string)t!["task"]!, t["n"]!.ToString(), t["responses"]!.ToString(),
                $"{N(t["kl_base"])} {Ci(t["kl_base_ci95"])}", $"{N(t["kl_head"])} {Ci(t["kl_head_ci95"])}",
                $"{N(t["gap_closed"])} {Ci(t["gap_closed_ci95"])}", t["tokens_deep"]!.ToString(), t["last_high_position"]?.ToString() ?? ""]).ToArray()));
        var series = new List<LineSeries>();
        foreach (var t in tasks)
        {
            var rows = t!["by_position"]!.AsArray().Where(r => !(bool)r!["deeper"]! && (long)r["n"]! >= MinPlotted).ToArray();
            var xs = rows.Select(r => (double)(int)r!["position"]!).ToArray();
            series.Add(new((string)t["task"]! + " base", xs, rows.Select(r => D(r!["kl_base"])).ToArray(),
                rows.Select(r => D(r!["kl_base_ci95"]![0])).ToArray(), rows.Select(r => D(r!["kl_base_ci95"]![1])).ToArray()));
        }
        b.Add(new Figure("depth-kl-base.png", AnalysisCharts.Lines("KL(aligned ‖ base) by position", "position in the response", "mean KL (nats)", series),
            "KL by position", $"Mean KL(aligned ‖ base) at each position index, per task, with 95% intervals: the alignment's depth (positions with n ≥ {MinPlotted} responses)."));
        var gap = tasks.Select(t =>
        {
            var rows = t!["by_position"]!.AsArray().Where(r => !(bool)r!["deeper"]! && (long)r["n"]! >= MinPlotted).ToArray();
            return new LineSeries((string)t["task"]!, rows.Select(r => (double)(int)r!["position"]!).ToArray(), rows.Select(r => D(r!["gap_closed"])).ToArray());
        }).ToArray();
        b.Add(new Figure("depth-gap-closed.png", AnalysisCharts.Lines("Fraction of the KL gap the head closes, by position", "position in the response", "1 − KL(aligned‖base+head) / KL(aligned‖base)", gap),
            "gap closed by position", "The fraction of the base–aligned KL gap that the head closes at each position index (n per position in analysis.json)."));
    }

    static void TokensSection(List<ReportBlock> b, JsonObject tokens)
    {
        b.Add(new Heading(2, "Which tokens the alignment shifts, and how often the head fixes them", "tokens"));
        b.Add(new Paragraph((string)tokens["definition"]! + ".", Muted: true));
        IReadOnlyList<IReadOnlyList<string>> Rows(JsonArray list) => list.Select(x => (IReadOnlyList<string>)[Tok(x!["token"]), x["id"]!.ToString(),
            x["chosen"]!.ToString(), x["shifted"]!.ToString(), x["fixed"]!.ToString(), N(x["fixed_fraction"], "0.00")]).ToArray();
        string[] header = ["token", "id", "chosen by aligned", "shifted in base", "fixed by head", "fixed fraction"];
        b.Add(new Table(header, Rows(tokens["all"]!.AsArray()), "All tasks."));
        foreach (var t in tokens["tasks"]!.AsArray())
            b.Add(new Table(header, Rows(t!["top"]!.AsArray()).Take(10).ToArray(), $"{t["task"]}."));
    }

    static void AnatomySection(List<ReportBlock> b, JsonObject a)
    {
        b.Add(new Heading(2, "The head's anatomy: how many dimensions", "anatomy"));
        var sv = a["singular_values"]!.AsArray().Select(D).ToArray();
        b.Add(new Paragraph($"Head {a["head"]}: rank_90 = {a["rank_90"]}, rank_99 = {a["rank_99"]}, entropy effective rank = {N(a["entropy_rank"], "0.0")} " +
                            $"of {sv.Length}. {a["effective_rank_definition"]}. Ablation positions: {a["positions"]}."));
        b.Add(new Figure("anatomy-spectrum.png", AnalysisCharts.Lines("Singular values of the head A", "index", "singular value",
            [new LineSeries("s_i", sv.Select((_, i) => (double)(i + 1)).ToArray(), sv)], logY: true), "spectrum", "Singular values of A, descending (log scale)."));
        var abl = a["ablation"]!.AsArray();
        var ranks = abl.Select(p => (double)(int)p!["rank"]!).ToArray();
        var xs = ranks.Select(r => Math.Log2(r + 1)).ToArray();
        var ticks = ranks.Select((r, i) => (xs[i], r.ToString(CultureInfo.InvariantCulture))).ToArray();
        b.Add(new Figure("anatomy-ablation.png", AnalysisCharts.Lines("Keeping only the top r components (no retraining)", "r (log scale; 0 = base)", "held-out value",
            [new LineSeries("KL(aligned ‖ ·)", xs, abl.Select(p => D(p!["kl"])).ToArray()), new LineSeries("top-1 agreement", xs, abl.Select(p => D(p!["top1"])).ToArray())],
            xTicks: ticks), "ablation", "Held-out KL and top-1 agreement of the head truncated to its top r singular components."));
        b.Add(new Table(["r", "KL", "top-1", "n"], abl.Select(p => (IReadOnlyList<string>)[p!["rank"]!.ToString(), N(p["kl"], "0.0000"), N(p["top1"]), p["n"]!.ToString()]).ToArray(),
            "Ablation: held-out positions; r = 0 is the base model, the last row the full head."));
        b.Add(new Table(["component", "s", "mean coefficient", "promotes", "suppresses"], a["components"]!.AsArray().Select(c => (IReadOnlyList<string>)[
            c!["index"]!.ToString(), N(c["singular_value"]), N(c["mean_coefficient"]),
            string.Join(" ", c["promoted"]!.AsArray().Select(t => Tok(t!["token"]))), string.Join(" ", c["suppressed"]!.AsArray().Select(t => Tok(t!["token"])))]).ToArray(),
            "Top components: tokens with the largest and smallest entries of W u_i (u_i oriented so its mean coefficient over the positions is positive)."));
    }

    static void HeadsSection(List<ReportBlock> b, JsonArray heads, JsonArray? stability)
    {
        b.Add(new Heading(2, "Stability and rank: several heads", "heads"));
        b.Add(new Table(["variant", "head", "rank", "seed", "own held-out KL", "own held-out top-1", "KL on common positions", "top-1 on common positions", "n common"],
            heads.Select(h => (IReadOnlyList<string>)[
            (string?)h!["variant"] ?? "", Path.GetFileName((string)h["path"]!), (string)h["rank"]!, h["seed"]?.ToString() ?? "", N(h["heldout_kl"], "0.0000"), N(h["heldout_top1"]),
            N(h["common_kl"], "0.0000"), N(h["common_top1"]), h["common_n"]?.ToString() ?? ""]).ToArray(),
            "Own held-out: the best epoch's figures recorded in the head file (its own split). Common positions: every head on the first head's held-out positions."));
        if (stability is null || stability.Count == 0) return;
        b.Add(new Paragraph("The portion with every head comes from one paired bootstrap over prompts (the evaluation's seed and resamples). " +
            "prompt sd / prompt 95%: bootstrap over prompts of the mean over heads (heads fixed). head sd: standard deviation across heads (training runs). " +
            "combined 95%: two-level bootstrap (resample heads, and take each drawn head's value on the same prompt resample); " +
            "its variance is the prompt part plus the head part (law of total variance).", Muted: true));
        b.Add(new Table(["task", "rank", "n", "heads", "per-head portions", "mean portion", "prompt sd", "prompt 95%", "head sd", "combined sd", "combined 95%"],
            stability.Select(s => (IReadOnlyList<string>)[(string)s!["task"]!, (string)s["rank"]!, s["n"]!.ToString(), s["heads"]!.AsArray().Count.ToString(),
                string.Join(", ", s["per_head"]!.AsArray().Select(p => N(p!["portion"], "0.00"))), N(s["portion"]), N(s["prompt_sd"]), Ci(s["prompt_ci95"]),
                N(s["head_sd"]), N(s["combined_sd"]), Ci(s["combined_ci95"])]).ToArray()));
        var byRank = stability.Where(s => s!["portion"] is not null).GroupBy(s => (string)s!["task"]!).ToArray();
        var numeric = stability.Select(s => (string)s!["rank"]!).Distinct().ToArray();
        if (numeric.Length > 1)
        {
            double X(string r, double full) => r == "full" ? full : double.Parse(r, CultureInfo.InvariantCulture);
            double fullX = numeric.Where(r => r != "full").Select(r => double.Parse(r, CultureInfo.InvariantCulture)).DefaultIfEmpty(1).Max() * 4;
            var series = byRank.Select(g =>
            {
                var pts = g.OrderBy(s => X((string)s!["rank"]!, fullX)).ToArray();
                return new LineSeries(g.Key, pts.Select(s => Math.Log2(X((string)s!["rank"]!, fullX))).ToArray(), pts.Select(s => D(s!["portion"])).ToArray(),
                    pts.Select(s => D(s!["combined_ci95"]![0])).ToArray(), pts.Select(s => D(s!["combined_ci95"]![1])).ToArray());
            }).ToArray();
            var ticks = numeric.Select(r => (Math.Log2(X(r, fullX)), r)).ToArray();
            b.Add(new Figure("portion-vs-rank.png", AnalysisCharts.Lines("Superficial portion vs the head's rank (retrained per rank)", "rank (log scale)", "portion", series, xTicks: ticks),
                "portion vs rank", "Each task's portion with heads retrained at each rank (mean over the heads of that rank, combined 95% interval)."));
        }
    }

    static void PrefillSection(List<ReportBlock> b, JsonObject p)
    {
        b.Add(new Heading(2, "Shallow safety: prefill attack", "prefill"));
        b.Add(new Paragraph($"{p["definition"]}", Muted: true));
        var curves = p["curves"]!.AsArray();
        var lengths = p["lengths"]!.AsArray().Select(x => (double)(int)x!).ToArray();
        var xs = lengths.Select(l => Math.Log2(l + 1)).ToArray();
        var series = curves.Select(c => new LineSeries((string)c!["variant"]!, xs, c["points"]!.AsArray().Select(x => D(x!["rate"])).ToArray(),
            c["points"]!.AsArray().Select(x => D(x!["ci95"]![0])).ToArray(), c["points"]!.AsArray().Select(x => D(x!["ci95"]![1])).ToArray())).ToArray();
        b.Add(new Figure("prefill.png", AnalysisCharts.Lines($"{p["task"]}: attack success vs prefill length", "prefill tokens (log scale)", (string)p["metric"]!, series,
            xTicks: lengths.Select((l, i) => (xs[i], l.ToString(CultureInfo.InvariantCulture))).ToArray()), "prefill curves",
            "Attack success when the response is forced to start with the first k tokens of the compromised model's answer, 95% bootstrap intervals over prompts."));
        b.Add(new Table(["variant", .. lengths.Select(l => $"k = {l}")], curves.Select(c => (IReadOnlyList<string>)[(string)c!["variant"]!,
            .. c["points"]!.AsArray().Select(x => $"{N(x!["rate"])} {Ci(x["ci95"])} (n {x["n"]})")]).ToArray()));
    }
}
