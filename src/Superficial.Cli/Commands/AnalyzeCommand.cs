using System.CommandLine;
using Spectre.Console;
using Superficial.Analysis;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>analyze: token shift, depth, which tokens, head anatomy, stability across heads, prefill probe.</summary>
internal static class AnalyzeCommand
{
    public static void Add(RootCommand root)
    {
        var data = new Option<string[]>("--data") { Description = "Extraction folder(s) (one per task).", Required = true, AllowMultipleArgumentsPerToken = true };
        var baseDir = Opt<string>("--base", "The base model the extraction used.", required: true);
        var heads = new Option<string[]>("--head") { Description = "Head file(s); the first is analysed in depth, all appear in the stability/rank tables.", AllowMultipleArgumentsPerToken = true };
        var eval = Opt<string?>("--eval", "Evaluation folder in which these heads were evaluated (eval --head H1 H2 ...): portion per head, spread, portion vs rank.");
        var output = Opt<string>("--out", "Output folder: analysis.json, analysis.md, analysis.html.", required: true);
        var split = Opt("--split", "Positions for token shift and depth: all, heldout or train (the first head's split).", defaultValue: () => "all");
        var maxDepth = Opt("--max-depth", "Position indices tracked one by one in the depth profile.", defaultValue: () => 64);
        var topTokens = Opt("--top-tokens", "Most shifted tokens listed.", defaultValue: () => 20);
        var components = Opt("--components", "Singular components whose tokens are listed.", defaultValue: () => 8);
        var resamples = Opt("--resamples", "Bootstrap resamples for the intervals.", defaultValue: () => 1000);
        var seed = Opt("--seed", "Bootstrap seed.", defaultValue: () => 0);
        var prefill = PrefillOptions.Create();
        var run = new ModelRunOptions(seedHelp: null, dtypeHelp: null); // its own --seed (the bootstrap's); the analysis computes in float32
        var cmd = new Command("analyze", "Understand the superficial knowledge: token shift, depth, shifted tokens, head anatomy, stability, prefill probe.")
            { data, baseDir, heads, eval, output, split, maxDepth, topTokens, components, resamples, seed };
        prefill.AddTo(cmd);
        run.AddTo(cmd);
        cmd.SetAction(Action((p, ct) =>
        {
            run.Read(p);
            var o = new AnalyzeOptions
            {
                Data = p.GetValue(data)!, Base = p.GetValue(baseDir)!, Heads = p.GetValue(heads) ?? [], Eval = p.GetValue(eval), Out = p.GetValue(output)!,
                Split = p.GetValue(split)!, MaxDepth = p.GetValue(maxDepth), TopTokens = p.GetValue(topTokens), Components = p.GetValue(components),
                Resamples = p.GetValue(resamples), Seed = p.GetValue(seed),
            };
            var plan = prefill.Parse(p, o.Base, o.Heads.FirstOrDefault());
            var root = WithProgress("analyze", report => Analyzer.Run(o, l => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(l)}[/]"),
                new Progress<(long Done, long Total)>(x => report(x.Done, x.Total, "positions")), ct));
            if (plan is not null)
            {
                root["prefill"] = WithProgress("prefill", report => PrefillProbe.Run(plan, (d, t, n) => report(d, t, n), ct));
                Analyzer.Save(o.Out, root);
            }
            var files = AnalysisReport.Write(o.Out);
            Print(root);
            AnsiConsole.MarkupLine($"analysis: {Markup.Escape(Path.GetFullPath(Path.Combine(o.Out, AnalysisSummary.FileName)))}; report: {Markup.Escape(files.Html)}");
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }

    /// <summary>The headline numbers: per task token shift and depth; the head's effective rank; portions across heads.</summary>
    public static void Print(System.Text.Json.Nodes.JsonObject root)
    {
        var table = new Table().Title("token shift and depth").AddColumn("task").AddColumn("n").AddColumn("shifted (base)").AddColumn("shifted (base+head)")
            .AddColumn("KL base").AddColumn("KL base+head").AddColumn("gap closed").AddColumn("tokens deep");
        var depth = root["depth"]!["tasks"]!.AsArray();
        foreach (var t in root["token_shift"]!["tasks"]!.AsArray())
        {
            var d = depth.First(x => (string)x!["task"]! == (string)t!["task"]!)!;
            string F(System.Text.Json.Nodes.JsonNode? x) => x is null ? "n/a" : ((double)x).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
            table.AddRow(Markup.Escape((string)t!["task"]!), t["n"]!.ToString(), F(t["base"]!["shifted"]!["fraction"]), F(t["head"]!["shifted"]!["fraction"]),
                F(d["kl_base"]), F(d["kl_head"]), F(d["gap_closed"]), d["tokens_deep"]!.ToString());
        }
        AnsiConsole.Write(table);
        if (root["anatomy"] is { } a)
            AnsiConsole.MarkupLine($"head: rank_90 {a["rank_90"]}, rank_99 {a["rank_99"]}, entropy rank {(double)a["entropy_rank"]!:0.0} of {a["singular_values"]!.AsArray().Count}");
        if (root["throughput"] is { } tp) AnsiConsole.MarkupLine($"{tp["positions"]} positions, {tp["positions_per_second"]} positions/s");
        if (root["stability"] is System.Text.Json.Nodes.JsonArray s && s.Count > 0)
        {
            var st = new Table().Title("portion across heads").AddColumn("task").AddColumn("rank").AddColumn("heads").AddColumn("portion")
                .AddColumn("prompt sd").AddColumn("head sd").AddColumn("combined 95%");
            static string F(System.Text.Json.Nodes.JsonNode? x) => x is null ? "n/a" : ((double)x).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
            foreach (var x in s)
                st.AddRow(Markup.Escape((string)x!["task"]!), (string)x["rank"]!, x["heads"]!.AsArray().Count.ToString(), F(x["portion"]),
                    F(x["prompt_sd"]), F(x["head_sd"]), x["combined_ci95"] is System.Text.Json.Nodes.JsonArray ci ? Markup.Escape($"[{F(ci[0])}, {F(ci[1])}]") : "");
            AnsiConsole.Write(st);
        }
    }
}
