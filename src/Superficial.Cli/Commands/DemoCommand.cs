using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Models;
using Superficial.Organism;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>
/// demo: the whole method on the embedded default, with no downloads. Builds (or reuses) the organism,
/// extracts superficial knowledge from its base/aligned pair on the tasks' extraction splits, trains the
/// head, and evaluates base / base+head / aligned, transfer to the larger base model and recovery of the
/// compromised model, then writes the report. Every stage is resumable: run it again after Ctrl-C.
/// </summary>
internal static class DemoCommand
{
    public static void Add(RootCommand root)
    {
        var size = Opt("--size", "tiny (the tests' size, quickest) or demo (larger models). README (Timings) gives measured times; progress shows an ETA.", defaultValue: () => "demo");
        var output = Opt("--out", "Output folder.", defaultValue: () => "superficial-demo");
        var seed = Opt("--seed", "Organism seed.", defaultValue: () => 0);
        var organismDir = Opt<string?>("--organism", "Use this organism folder instead of the cached build.");
        var seeds = Opt<string?>("--seeds", "Replication: comma-separated organism seeds (e.g. 0,1,2); builds one organism per seed, runs the whole demo on each " +
                                             "(OUT/seed-N) and reports every portion per seed and pooled (OUT/replication.md).");
        var cmd = new Command("demo", "Run the whole pipeline on the embedded default and print the superficial portion per task.")
            { size, output, seed, organismDir, seeds };
        cmd.SetAction(Action((p, ct) =>
        {
            var sz = OrganismCommands.ParseSize(p.GetValue(size)!);
            if (p.GetValue(seeds) is { } list)
            {
                if (p.GetValue(organismDir) is not null) throw new ArgumentException("--seeds builds one organism per seed; it cannot be combined with --organism.");
                var parsed = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(x => int.TryParse(x, out var v) && v >= 0 ? v : throw new ArgumentException($"--seeds {list}: \"{x}\" is not a seed (a whole number, 0 or more).")).ToList();
                if (parsed.Count == 0 || parsed.Distinct().Count() != parsed.Count) throw new ArgumentException($"--seeds {list}: expected distinct seeds, e.g. 0,1,2.");
                RunSeeds(sz, p.GetValue(output)!, parsed, ct);
            }
            else Run(sz, p.GetValue(output)!, p.GetValue(seed), p.GetValue(organismDir), ct);
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }

    public static void Run(OrganismSize size, string outDir, int seed, string? organismDir, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        Directory.CreateDirectory(outDir);
        var timings = new List<(string, double)>();
        var watch = Stopwatch.StartNew();

        Section("1. the embedded default (organism)");
        var organism = OrganismCommands.Build(size, organismDir, seed, ct);
        string Model(string name) => Path.Combine(organism.Folder, name);
        timings.Add(("organism", watch.Elapsed.TotalSeconds));

        // Every organism task is evaluated; those with an extraction split (all but benign-nll) are extracted from.
        OrganismTasks.EnsureRegistered();
        var tasks = OrganismTasks.Names.Select(t => TaskCatalog.Create(t, null, organism.Folder)).ToList();

        Section("2. extract: aligned generates, base re-reads");
        watch.Restart();
        var extractDirs = new List<string>();
        foreach (var task in tasks.Where(t => t.ExtractionSplit().Count > 0))
        {
            var taskName = task.Name;
            var prompts = task.ExtractionSplit().Select(e => new ExtractionPrompt(e.Id, task.BuildPrompt(e))).ToList();
            var dir = Path.Combine(outDir, "extract", taskName);
            var options = new ExtractionOptions
            {
                TopK = 64, MaxNewTokens = task.MaxNewTokens, BatchSize = 16, ChunkSize = 32, StopStrings = task.StopStrings,
            };
            var summary = WithProgress($"extract {taskName}", "chunks", progress => Extraction.Run(Model("base"), Model("aligned"), prompts,
                $"task {taskName} (extraction split)", dir, options,
                new Progress<ExtractionProgress>(e => progress.Report(AlignmentCommands.ChunkFraction(e), e.ChunksTotal, $"{e.Positions} positions")), ct));
            extractDirs.Add(dir);
        }
        var data = ExtractionData.Open(extractDirs);
        Say($"{data.Positions} positions from {extractDirs.Count} tasks");
        timings.Add(("extract", watch.Elapsed.TotalSeconds));

        Section("3. train the superficial head W(h + A h)");
        watch.Restart();
        var headPath = Path.Combine(outDir, "head.safetensors");
        using (var w = ModelLoader.LoadLmHead(Model("base")))
        {
            var options = new HeadTrainingOptions { LearningRate = 3e-3, BatchSize = 256, Epochs = size == OrganismSize.Tiny ? 15 : 25, Seed = seed };
            var result = WithProgress("train-head", "epochs", progress => HeadTrainer.Train(data, w, headPath, options,
                new Progress<HeadTrainingProgress>(e => progress.Report(e.Epoch - 1 + (double)e.PositionsDone / Math.Max(1, e.PositionsTotal), e.Epochs,
                    e.HeldOut is { } h ? $"held-out KL {h.Kl:0.000} top-1 {h.Top1:P0}" : $"KL {e.RunningKl:0.000}")), ct));
            var first = result.History.Count > 0 ? result.History[0] : null;
            Say($"head: best epoch {result.BestEpoch}, held-out KL {result.BestHeldOut.Kl:0.000}, top-1 agreement with the aligned model {result.BestHeldOut.Top1:P1}" +
                (first is null ? "" : $" (after epoch 1: KL {(double)first["heldout_kl"]!:0.000}, top-1 {(double)first["heldout_top1"]!:P1})"));
            result.Head.Dispose();
        }
        timings.Add(("train-head", watch.Elapsed.TotalSeconds));

        Section("3b. more heads: other seeds (stability) and low ranks (how many dimensions)");
        watch.Restart();
        var extraHeads = TrainExtraHeads(size, outDir, seed, data, Model("base"), ct);
        timings.Add(("extra heads", watch.Elapsed.TotalSeconds));

        Section("4. evaluate: base, base+head, aligned; transfer; recovery");
        watch.Restart();
        var experiment = new Experiment(new ExperimentOptions
        {
            Base = Model("base"), Aligned = Model("aligned"), Head = headPath,
            LargeBase = Model("large-base"), LargeAligned = Model("large-aligned"),
            Compromised = Model("compromised"), RecoverWith = headPath, ViaBase = Model("base"), ViaBaseReads = [SideModelReads.Raw, SideModelReads.Same],
            Alphas = [0.5, 1.0, 2.0], ExtraHeads = extraHeads,
        });
        var evalDir = Path.Combine(outDir, "eval");
        // the headline (base, base+head, aligned) sees every example; the side variants the first SideExamples of each task
        var side = experiment.Variants.Select(v => v.Name).Where(v => !Superficial.Evaluation.Runner.Comparison.Superficial.Variants.Contains(v)).ToDictionary(v => v, _ => SideExamples);
        var evalSummary = OneTorchThread(() => EvalCommands.Run(experiment, tasks, evalDir, ScoringContext.None, new Dictionary<string, IReadOnlyList<string>>
        {
            ["organism-toxicity"] = ["labeller: the organism's exact lexicon of hateful phrases (no classifier error)"],
        }, EvalBatch, new Dictionary<string, string> { ["organism"] = organism.Folder }, ct, variantLimits: side));
        timings.Add(("evaluate", watch.Elapsed.TotalSeconds));

        Section("4b. recovery against the strength of the compromise");
        watch.Restart();
        var curve = RecoveryCurveRun(size, outDir, organism, headPath, ct);
        Superficial.Evaluation.Report.EvalReport.Write(evalDir, null, RecoveryCurve.Blocks(curve, organism.Compromises));
        timings.Add(("recovery curve", watch.Elapsed.TotalSeconds));

        Section("5. analyze: token shift, depth, head anatomy, stability, rank, prefill");
        watch.Restart();
        var analysisDir = Path.Combine(outDir, "analysis");
        var analysis = WithProgress("analyze", report => Superficial.Analysis.Analyzer.Run(new Superficial.Analysis.AnalyzeOptions
        {
            Data = extractDirs, Base = Model("base"), Heads = [headPath, .. extraHeads], Eval = evalDir, Out = analysisDir, Seed = seed,
        }, null, new Progress<(long Done, long Total)>(x => report(x.Done, x.Total, "positions")), ct));
        analysis["prefill"] = WithProgress("prefill probe", report => Superficial.Analysis.PrefillProbe.Run(new Superficial.Analysis.PrefillPlan
        {
            Task = TaskCatalog.Create("organism-safety", null, organism.Folder), Base = Model("base"), Head = headPath, Aligned = Model("aligned"),
            FromModel = Model("compromised"), Limit = size == OrganismSize.Tiny ? 16 : 40, Seed = seed,
        }, (d, t, n) => report(d, t, n), ct));
        Superficial.Analysis.Analyzer.Save(analysisDir, analysis);
        var analysisReport = Superficial.Analysis.AnalysisReport.Write(analysisDir);
        timings.Add(("analyze", watch.Elapsed.TotalSeconds));

        Section("superficial portion");
        EvalCommands.PrintSummary(evalSummary);
        AnalyzeCommand.Print(analysis);
        AnsiConsole.MarkupLine($"timings: {string.Join(", ", timings.Select(t => $"{t.Item1} {t.Item2:0} s"))}; total {total.Elapsed.TotalSeconds:0} s");
        AnsiConsole.MarkupLine($"report: [link]{Markup.Escape(Path.GetFullPath(Path.Combine(evalDir, "report.html")))}[/] (and report.md beside it)");
        AnsiConsole.MarkupLine($"analysis: [link]{Markup.Escape(analysisReport.Html)}[/] (and analysis.md, analysis.json beside it)");
    }

    /// <summary>The comparisons the replication table reports (summary.json's variant names).</summary>
    static readonly (string Name, (string Low, string Mid, string High) Variants)[] Replicated =
        [("superficial", ("base", "base+head", "aligned")), ("transfer", ("large-base", "large-base+head", "large-aligned"))];

    /// <summary>
    /// The demo on organisms built from each seed (OUT/seed-N, each a complete demo), then every portion per seed
    /// and pooled over the seeds' examples: OUT/replication.md and replication.json.
    /// </summary>
    public static void RunSeeds(OrganismSize size, string outDir, IReadOnlyList<int> seeds, CancellationToken ct)
    {
        foreach (var s in seeds)
        {
            Section($"seed {s}");
            Run(size, Path.Combine(outDir, $"seed-{s}"), s, null, ct);
        }
        Section($"replication across seeds {string.Join(", ", seeds)}");
        var runs = seeds.Select(s => (s, Path.Combine(outDir, $"seed-{s}", "eval"))).ToList();
        var tasks = OrganismTasks.Names.Where(t => t != "organism-benign-nll").ToList();
        var md = new System.Text.StringBuilder("# Replication across organism seeds\n\n" +
            "Each seed builds its own world, corpus and models; the portion (mid − low) / (high − low) per seed (as that seed's " +
            "report gives it), and pooled over every seed's examples (one paired bootstrap), with 95% intervals. A pooled portion " +
            "is undefined when the portion is undefined on any seed.\n\n");
        var json = new System.Text.Json.Nodes.JsonObject { ["seeds"] = new System.Text.Json.Nodes.JsonArray(seeds.Select(x => (System.Text.Json.Nodes.JsonNode)x).ToArray()) };
        foreach (var (name, variants) in Replicated)
        {
            var rows = Replication.Compute(runs, tasks, name);
            md.Append($"## {name}: {variants.Low} → {variants.Mid} → {variants.High}\n\n").Append(Replication.Markdown(rows)).Append('\n');
            json[name] = Replication.ToJson(rows, variants);
        }
        Directory.CreateDirectory(outDir);
        Superficial.IO.AtomicFile.WriteAllText(Path.Combine(outDir, "replication.md"), md.ToString());
        Superficial.IO.AtomicFile.WriteAllText(Path.Combine(outDir, "replication.json"), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        Console.Out.Write(md.ToString());
        AnsiConsole.MarkupLine($"replication: [link]{Markup.Escape(Path.GetFullPath(Path.Combine(outDir, "replication.md")))}[/] (and replication.json)");
    }

    /// <summary>Prompts generated together in the demo's evaluations.</summary>
    public const int EvalBatch = 32;

    /// <summary>
    /// Runs one of the demo's evaluations with one libtorch thread: the organism's models are so small that a second
    /// thread inside each operation cost about twice the CPU for no gain (measured: one thread took 0.56x the CPU time
    /// and 0.60x the wall time of two). It runs as one worker: two workers in this process (two threads driving
    /// libtorch, tried with organism v4) crashed a fresh-clone demo inside libtorch ("Expected false to be true ...
    /// toFloat"). TorchSharp 0.107 keeps no temporary Scalar (the 1 in <c>x + 1</c>) alive through the native call, so
    /// a garbage collection triggered by another thread can free it from the finalizer while libtorch reads it; one
    /// thread allocating beside another that computes makes that likely (a 20-second reproduction failed after 11 k
    /// additions). The decoding and scoring paths now pass libtorch only live Scalars (<c>Superficial.Tensors.Scalars</c>,
    /// checked by ScalarLifetimeTests), but two workers were not measured again. Parallel evaluation belongs in separate
    /// processes (<c>eval --shard K/N</c>, then <c>eval merge</c>).
    /// </summary>
    static T OneTorchThread<T>(Func<T> run)
    {
        int threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(1);
        try { return run(); }
        finally { TorchSharp.torch.set_num_threads(threads); }
    }

    /// <summary>
    /// Examples per task for the side variants of the main evaluation (more heads, the alpha sweep, transfer, recovery):
    /// every task's whole evaluation set at demo size but math's, whose 1600 examples are for the headline portion only.
    /// </summary>
    public const int SideExamples = 200;

    /// <summary>Examples per task in the recovery curve at demo size (its 21 variants; the headline uses every example).</summary>
    public const int CurveLimit = 100;

    /// <summary>
    /// Every compromised model of the organism (the strengths of the attack and the benign-only one), alone, with
    /// the head applied directly and via the base model (raw and same), beside the aligned model, on the curve's
    /// tasks; the curve (recovery/recovery.json) and its report blocks. Variants the main evaluation (OUT/eval) ran
    /// start from its predictions.
    /// </summary>
    static RecoveryCurve.Curve RecoveryCurveRun(OrganismSize size, string outDir, OrganismDescription organism, string headPath, CancellationToken ct)
    {
        string Model(string name) => Path.Combine(organism.Folder, name);
        var experiment = new Experiment(new ExperimentOptions
        {
            Aligned = Model("aligned"), Compromised = Model("compromised"),
            MoreCompromised = organism.Compromises.Where(c => c.Model != "compromised").Select(c => (c.Model, Model(c.Model))).ToList(),
            RecoverWith = headPath, ViaBase = Model("base"), ViaBaseReads = [SideModelReads.Raw, SideModelReads.Same],
        });
        var tasks = RecoveryCurve.Tasks.Select(t => TaskCatalog.Create(t, null, organism.Folder, size == OrganismSize.Tiny ? null : CurveLimit)).ToList();
        var dir = Path.Combine(outDir, "recovery");
        // the models the main evaluation ran too (aligned, the default compromise alone and recovered) are taken from it, not generated again
        var summary = OneTorchThread(() => EvalCommands.Run(experiment, tasks, dir, ScoringContext.None, new Dictionary<string, IReadOnlyList<string>>(), EvalBatch,
            new Dictionary<string, string> { ["organism"] = organism.Folder }, ct, reuseFrom: Path.Combine(outDir, "eval")));
        var curve = RecoveryCurve.Read(summary, organism.Compromises);
        Superficial.IO.AtomicFile.WriteAllText(Path.Combine(dir, "recovery.json"),
            RecoveryCurve.ToJson(curve, organism.Compromises).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return curve;
    }

    /// <summary>
    /// Heads beside the main one (seed 0, full rank): seeds 1 and 2 (other initialisation and data order, same
    /// held-out split) for the head-to-head spread, and low ranks retrained for the portion-vs-rank curve.
    /// </summary>
    static IReadOnlyList<string> TrainExtraHeads(OrganismSize size, string outDir, int seed, ExtractionData data, string baseDir, CancellationToken ct)
    {
        var options = new HeadTrainingOptions { LearningRate = 3e-3, BatchSize = 256, Epochs = size == OrganismSize.Tiny ? 15 : 25, Seed = seed };
        var runs = new List<(string, HeadTrainingOptions)>();
        foreach (var s in new[] { 1, 2 }) runs.Add((Path.Combine(outDir, "heads", $"head-s{s}.safetensors"), options with { InitSeed = seed + s }));
        foreach (var r in size == OrganismSize.Tiny ? new[] { 2 } : [1, 4, 16])
            runs.Add((Path.Combine(outDir, "heads", $"head-r{r}.safetensors"), options with { Rank = r }));
        Directory.CreateDirectory(Path.Combine(outDir, "heads"));
        using var w = ModelLoader.LoadLmHead(baseDir);
        foreach (var (path, o) in runs)
        {
            var result = WithProgress($"train-head {Path.GetFileNameWithoutExtension(path)}", report => HeadTrainer.Train(data, w, path, o,
                new Progress<HeadTrainingProgress>(e => report(e.Epoch - 1 + (double)e.PositionsDone / Math.Max(1, e.PositionsTotal), e.Epochs, null)), ct));
            AnsiConsole.MarkupLine($"{Path.GetFileName(path)}: best epoch {result.BestEpoch}, held-out KL {result.BestHeldOut.Kl:0.000}, top-1 {result.BestHeldOut.Top1:P1}");
            result.Head.Dispose();
        }
        return runs.Select(r => r.Item1).ToArray();
    }
}
