using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Evaluation.Judges;
using Superficial.Evaluation.Report;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Tasks;
using Superficial.Evaluation.Toxicity;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>eval and score: measuring variants on tasks, and re-scoring saved outputs.</summary>
internal static class EvalCommands
{
    public static void Add(RootCommand root)
    {
        root.Subcommands.Add(Eval());
        root.Subcommands.Add(Score());
        root.Subcommands.Add(Tasks());
    }

    static Command Tasks()
    {
        var cmd = new Command("tasks", "List the tasks --tasks/--task/--prompts accept: metric, direction, kind and the data each reads.");
        cmd.SetAction(Action((_, _) =>
        {
            var table = new Spectre.Console.Table().AddColumn("task").AddColumn("metric").AddColumn("better").AddColumn("kind").AddColumn("reads");
            foreach (var t in TaskCatalog.Describe())
                table.AddRow(Markup.Escape(t.Name), Markup.Escape(t.Metric), t.HigherIsBetter ? "higher" : "lower",
                    t.Kind switch { TaskKind.MultipleChoice => "log-likelihood", TaskKind.RollingLogLikelihood => "rolling log-likelihood", _ => "generation" }, Markup.Escape(t.Needs));
            AnsiConsole.Write(table);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Task names from a comma-separated list, each checked (with a "did you mean" for typos).</summary>
    public static IReadOnlyList<string> TaskNames(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is { Length: > 0 } names ? names
            : throw new ArgumentException("--tasks: give at least one task name (superficial tasks lists them).");

    /// <summary>Judges from flags/environment (only when a judge model is named) and the toxicity labeller.</summary>
    public static (ScoringContext Context, Dictionary<string, IReadOnlyList<string>> Notes) Scoring(IReadOnlyList<IEvalTask> tasks,
        string? dataDir, string? judgeUrl, string? judgeModel, string? labeller, string cacheDir)
    {
        ISafetyJudge? safety = null;
        ITruthJudge? truth = null;
        IToxicityLabeler? toxicity = null;
        var notes = new Dictionary<string, IReadOnlyList<string>>();
        OpenAiJudgeClient? client = null;
        if (judgeModel is not null || Environment.GetEnvironmentVariable(JudgeOptions.ModelVariable) is not null)
        {
            var options = JudgeOptions.FromEnvironment(judgeUrl, judgeModel, null, Path.Combine(cacheDir, "judge-cache.jsonl"));
            client = new OpenAiJudgeClient(options, Note);
            safety = new SafetyJudge(client);
            truth = new TruthJudge(client);
        }
        if (tasks.Any(t => t.Name == ToxiGenTask.TaskName))
        {
            toxicity = ToxicityLabellers.Create(labeller, dataDir, cacheDir, client, Note);
            notes[ToxiGenTask.TaskName] = [$"toxicity labeller: {toxicity.Name}" +
                                           (toxicity.Accuracy is double acc ? $", held-out accuracy {acc:0.000}" : "")];
        }
        var context = ScoringServices.Create(safety, truth, toxicity);
        foreach (var t in tasks)
        {
            try { context.CheckServices(t); }
            catch (ScorerMissingException e)
            { throw new ArgumentException($"{e.Message} Name a judge model with --judge-model (and --judge-url), or set {JudgeOptions.ModelVariable}."); }
        }
        return (context, notes);
    }

    public static string DefaultCacheDir() =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "superficial");

    /// <summary>Runs the experiment with a progress display and writes summary.json, report.md and report.html under <paramref name="outDir"/>.</summary>
    public static EvalSummary Run(Experiment experiment, IReadOnlyList<IEvalTask> tasks, string outDir, ScoringContext scoring,
        IReadOnlyDictionary<string, IReadOnlyList<string>> notes, int batch, IReadOnlyDictionary<string, string> dataSources, CancellationToken ct,
        ModelRunSettings? run = null, int? limit = null, int? maxNewTokens = null, IReadOnlyDictionary<string, int>? variantLimits = null,
        string? reuseFrom = null) =>
        Run(experiment, tasks, outDir, scoring, notes, batch, dataSources, ct, run, limit, ShardSpec.Single, maxNewTokens, variantLimits, reuseFrom)!;

    /// <summary>As above for one worker: with N > 1, only its slice, under OUT/shards/, and null (eval merge writes the summary).</summary>
    static EvalSummary? Run(Experiment experiment, IReadOnlyList<IEvalTask> tasks, string outDir, ScoringContext scoring,
        IReadOnlyDictionary<string, IReadOnlyList<string>> notes, int batch, IReadOnlyDictionary<string, string> dataSources, CancellationToken ct,
        ModelRunSettings? run, int? limit, ShardSpec worker, int? maxNewTokens = null, IReadOnlyDictionary<string, int>? variantLimits = null,
        string? reuseFrom = null)
    {
        var options = new EvalRunOptions
        {
            BatchSize = batch, Scoring = scoring, Notes = notes, DataSources = dataSources,
            Limit = limit, MaxNewTokens = maxNewTokens, Seed = (int)(run?.Seed ?? 0), Settings = SettingsRecord(run),
            VariantLimits = variantLimits ?? new Dictionary<string, int>(), ReuseFrom = reuseFrom,
        };
        return WithProgress("eval", "task-variants", progress =>
        {
            int totalUnits = tasks.Count * experiment.Variants.Count;
            var fraction = new Dictionary<string, double>();
            var report = new Progress<EvalProgress>(p =>
            {
                lock (fraction)
                {
                    fraction[p.Task + "|" + p.Variant] = p.Total == 0 ? 1 : (double)p.Done / p.Total;
                    progress.Report(fraction.Values.Sum(), totalUnits, $"{p.Task} / {p.Variant}: {p.Done}/{p.Total} examples");
                }
            });
            if (worker.Count == 1) return experiment.Run(tasks, outDir, options, run?.Dtype, report, ct);
            experiment.RunShard(worker, tasks, outDir, options, run?.Dtype, report, ct);
            return null;
        });
    }

    /// <summary>What summary.json records about the run: tool version, commit, command line, date, decoding, device, dtype, seeds.</summary>
    static Dictionary<string, System.Text.Json.Nodes.JsonNode?> SettingsRecord(ModelRunSettings? run)
    {
        var d = RunRecord.Describe(Cli.Args);
        d["decoding"] = "greedy";
        var r = run ?? new ModelRunSettings("cpu", null, null, 0);
        foreach (var (k, v) in r.Describe()) d[k] = System.Text.Json.JsonSerializer.SerializeToNode(v);
        d["bootstrap_seed"] = r.Seed;
        return d;
    }

    static IReadOnlyList<double> ParseAlphas(string? text) => text is null ? [1.0] :
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var a) && double.IsFinite(a)
                ? a : throw new ArgumentException($"--alpha: \"{s}\" is not a number.")).ToArray();

    static Command Eval()
    {
        var baseDir = Opt<string?>("--base", "Base model folder (with --transfer-from: the large base model).");
        var aligned = Opt<string?>("--aligned", "Aligned model folder (read through its chat template).");
        var head = new Option<string[]>("--head")
        {
            Description = "Superficial head trained on --base (or on --transfer-from); several heads (other seeds or ranks) are each evaluated as base+head#2, #3, ...",
            AllowMultipleArgumentsPerToken = true,
        };
        var transferFrom = Opt<string?>("--transfer-from", "Small base model the --head was trained on; --base/--aligned are then the larger pair.");
        var transferMode = Opt("--transfer-mode", "offset (small model beside, default) or direct (same hidden size only).", defaultValue: () => "offset");
        var largeBase = Opt<string?>("--large-base", "Also evaluate transfer of --head to this larger base model (offsite alignment).");
        var largeAligned = Opt<string?>("--large-aligned", "The larger aligned model, the target of transfer.");
        var compromised = Opt<string?>("--compromised", "A compromised model (aligned, then fine-tuned on harmful data) to recover.");
        var recoverWith = Opt<string?>("--recover-with", "Head applied to --compromised (trained on the original base/aligned pair).");
        var viaBase = Opt<string?>("--via-base", "Also recover with the logit shift computed by this original base model beside --compromised.");
        var viaBaseReads = Opt("--via-base-reads",
            "What the --via-base model reads: raw (the raw prompt, as at extraction), same (the chat-formatted tokens), or raw,same for both.",
            defaultValue: () => "raw");
        var alpha = Opt<string?>("--alpha", "Comma-separated scales of the head's shift for a sweep, e.g. 0.5,1,1.5,2 (default 1).");
        var tasks = Opt<string>("--tasks", "Comma-separated task names.", required: true);
        var data = Opt<string?>("--data", "Folder of the real benchmark files (advbench/, gsm/, toxigen/, truthfulqa/).");
        var organism = Opt<string?>("--organism", "Organism folder, for organism-* tasks.");
        var limit = Opt<int?>("--limit", "Evaluate only the first N examples of each task.");
        var batch = Opt("--batch", "Prompts generated together.", defaultValue: () => 8);
        var maxMemory = Opt<string?>("--max-memory", "Memory the models may take at once, e.g. 20GB (default: no limit). Variants run one after another; a model no running variant holds is freed before the next one is loaded if both would not fit, and a variant whose model (and side models) cannot fit is refused before anything loads.");
        var maxNew = Opt<int?>("--max-new-tokens", "Generate at most N new tokens per example (default: each task's own budget, e.g. 512 for gsm); for quick runs on large models.");
        var output = Opt<string>("--out", "Output folder (resumable).", required: true);
        var template = Opt<string?>("--chat-template", "Chat template for the aligned models (family name or .jinja), if theirs is missing or unrecognised.");
        var judgeUrl = Opt<string?>("--judge-url", "OpenAI-compatible endpoint for LLM judges (else SUPERFICIAL_JUDGE_URL; key from SUPERFICIAL_JUDGE_KEY or OPENAI_API_KEY).");
        var judgeModel = Opt<string?>("--judge-model", "Judge model name; judges are used only when one is given (or SUPERFICIAL_JUDGE_MODEL is set).");
        var labeller = Opt("--toxicity-labeller", "Labeller of real ToxiGen outputs: " + ToxicityLabellers.Choices + ".", defaultValue: () => ToxicityLabellers.Default);
        var run = new ModelRunOptions(seedHelp: "Seed of the bootstrap intervals (decoding is greedy).");
        var allowOtherBase = Opt<bool>("--allow-other-base", "Apply --head even to a model that is not the base it was trained on (a deliberate transfer).");
        var shard = Opt<string?>("--shard", "K/N: evaluate the K-th (0-based) of N slices (every N-th batch of each task) into OUT/shards/; " +
                                             "default from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX; then eval merge.");
        var shardCount = Opt<int?>("--shard-count", "N for a Kubernetes Indexed Job (JOB_COMPLETION_INDEX gives K).");
        var cmd = new Command("eval", "Evaluate base, base + head and aligned (and transfer / recovery variants) on tasks; write summary and report.")
            { baseDir, aligned, head, transferFrom, transferMode, largeBase, largeAligned, compromised, recoverWith, viaBase, viaBaseReads, alpha, tasks, data, organism, limit, batch, maxNew, maxMemory, output, template, judgeUrl, judgeModel, labeller, allowOtherBase, shard, shardCount };
        cmd.Subcommands.Add(Merge());
        run.AddTo(cmd);
        cmd.SetAction(Action((p, ct) =>
        {
            var settings = run.Read(p);
            var experiment = new Experiment(new ExperimentOptions
            {
                Base = p.GetValue(baseDir), Aligned = p.GetValue(aligned), Head = p.GetValue(head)?.FirstOrDefault(),
                ExtraHeads = p.GetValue(head)?.Skip(1).ToArray() ?? [], TransferFrom = p.GetValue(transferFrom),
                TransferMode = Choices.Parse<TransferMode>("--transfer-mode", p.GetValue(transferMode)!), LargeBase = p.GetValue(largeBase), LargeAligned = p.GetValue(largeAligned),
                Compromised = p.GetValue(compromised), RecoverWith = p.GetValue(recoverWith), ViaBase = p.GetValue(viaBase),
                ViaBaseReads = p.GetValue(viaBaseReads)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(r => Choices.Parse<SideModelReads>("--via-base-reads", r)).ToList(), Alphas = ParseAlphas(p.GetValue(alpha)), ChatTemplate = p.GetValue(template),
                AllowOtherBase = p.GetValue(allowOtherBase), MaxMemory = AlignmentCommands.ParseBytes("--max-memory", p.GetValue(maxMemory)),
            });
            var taskList = TaskNames(p.GetValue(tasks)!).Select(n => TaskCatalog.Create(n, p.GetValue(data), p.GetValue(organism))).ToList();
            var outDir = p.GetValue(output)!;
            var worker = ShardSpec.Resolve(p.GetValue(shard), p.GetValue(shardCount));
            // a worker's run.json repeats that worker; eval merge writes the whole run's
            RunRecord.Write(p, worker.Count > 1 ? EvalShards.FolderOf(outDir, worker) : outDir, Cli.Args);
            var (scoring, notes) = Scoring(taskList, p.GetValue(data), p.GetValue(judgeUrl), p.GetValue(judgeModel), p.GetValue(labeller), DefaultCacheDir());
            var sources = new Dictionary<string, string>();
            if (p.GetValue(data) is { } d) sources["data"] = Path.GetFullPath(d);
            if (p.GetValue(organism) is { } o) sources["organism"] = Path.GetFullPath(o);
            if (worker.Count > 1) Note($"worker {worker}: every {Ordinal(worker.Count)} batch of {p.GetValue(batch)} examples of each task, from batch {worker.Index}");
            var summary = Run(experiment, taskList, outDir, scoring, notes, p.GetValue(batch), sources, ct, settings, p.GetValue(limit), worker, p.GetValue(maxNew));
            if (summary is null)
            {
                Say($"shard {worker} done -> {Path.GetFullPath(EvalShards.FolderOf(outDir, worker))}; " +
                    $"once all {worker.Count} are: {ProgramName} eval merge --out {outDir}");
                return 0;
            }
            PrintSummary(summary);
            Say($"report: {Path.GetFullPath(Path.Combine(outDir, "report.html"))}");
            return 0;
        }));
        return cmd;
    }

    static string Ordinal(int n) => n + (n % 100 is 11 or 12 or 13 ? "th" : (n % 10) switch { 1 => "st", 2 => "nd", 3 => "rd", _ => "th" });

    static Command Merge()
    {
        var output = Opt<string>("--out", "The output folder the eval shards (eval --shard K/N --out DIR) wrote to.", required: true);
        var count = Opt<int?>("--shard-count", "Which split to merge when DIR/shards holds runs split different ways.");
        var cmd = new Command("merge", "Put the N shards of an evaluation together: the predictions, summary.json and report a single run writes.")
            { output, count };
        cmd.SetAction(Action((p, ct) =>
        {
            var outDir = p.GetValue(output)!;
            if (EvalShards.Counts(outDir).Count == 0 && File.Exists(Path.Combine(outDir, EvalSummary.FileName)))
            {
                Say($"{Path.GetFullPath(outDir)} holds a run that was not split (summary.json, no shards/): nothing to merge.");
                return 0;
            }
            var summary = EvalShards.Merge(outDir, p.GetValue(count));
            RunRecord.WriteMerged(outDir, EvalShards.FolderOf(outDir, new ShardSpec(0, summary.Shards.Count)));
            EvalReport.Write(outDir);
            PrintSummary(summary);
            Say($"merged {summary.Shards.Count} shards; report: {Path.GetFullPath(Path.Combine(outDir, "report.html"))}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The headline tables: each comparison's metrics with intervals and its portion.</summary>
    public static void PrintSummary(EvalSummary summary)
    {
        foreach (var comparison in new[] { summary.Main }.Concat(summary.Comparisons).Where(c => c is not null))
        {
            var c = comparison!;
            var table = new Spectre.Console.Table().Title(Markup.Escape($"{c.Comparison.Name}: {c.Comparison.Low} -> {c.Comparison.Mid} -> {c.Comparison.High}"))
                .AddColumn("task").AddColumn("metric").AddColumn("n").AddColumn(Markup.Escape(c.Comparison.Low))
                .AddColumn(Markup.Escape(c.Comparison.Mid)).AddColumn(Markup.Escape(c.Comparison.High)).AddColumn("portion");
            var notes = new List<string>();
            foreach (var t in c.Tasks)
            {
                static string V(VariantResult v) => ReportFormat.WithInterval(v.Mean, v.Ci95);
                var portion = !ReportFormat.IsShare(t) ? ReportFormat.PortionOrCost(t, c.Comparison)
                    : t.Portion.Value is double pv && t.Portion.Ci95 is { } pci
                    ? $"{ReportFormat.Fixed(pv, "0.00")} [{ReportFormat.Fixed(pci.Low, "0.00")}, {ReportFormat.Fixed(pci.High, "0.00")}]" : "n/a *";
                if (ReportFormat.IsShare(t) && t.Portion.Value is null) notes.Add($"* {t.Task}: {t.Portion.Note}");
                table.AddRow(Markup.Escape(t.Task), Markup.Escape(t.Metric + (t.HigherIsBetter ? " (higher better)" : " (lower better)")),
                    t.N.ToString(), Markup.Escape(V(t.Low)), Markup.Escape(V(t.Mid)), Markup.Escape(V(t.High)), Markup.Escape(portion));
            }
            AnsiConsole.Write(table);
            foreach (var n in notes.Distinct()) Say(n);
        }
    }

    static Command Score()
    {
        var task = Opt<string?>("--task", "Task whose scorer to use (e.g. gsm, advbench, toxigen, truthfulqa); default: the \"task\" of the prediction lines.");
        var predictions = Opt<string>("--predictions", "JSONL of outputs: ours, or the reference implementation's predictions.jsonl.", required: true);
        var output = Opt<string?>("--out", "Output folder (default: beside the predictions, in rescored/).");
        var data = Opt<string?>("--data", "Folder of the real benchmark files.");
        var organism = Opt<string?>("--organism", "Organism folder, for organism-* tasks.");
        var judgeUrl = Opt<string?>("--judge-url", "OpenAI-compatible endpoint for LLM judges.");
        var judgeModel = Opt<string?>("--judge-model", "Judge model name.");
        var labeller = Opt("--toxicity-labeller", "Labeller of real ToxiGen outputs: " + ToxicityLabellers.Choices + ".", defaultValue: () => ToxicityLabellers.Default);
        var cmd = new Command("score", "Re-score saved outputs without generating (e.g. with another judge).")
            { task, predictions, output, data, organism, judgeUrl, judgeModel, labeller };
        cmd.SetAction(Action((p, ct) =>
        {
            var file = p.GetValue(predictions)!;
            var t = TaskCatalog.Create(p.GetValue(task) ?? TaskOfPredictions(file), p.GetValue(data), p.GetValue(organism));
            var outDir = p.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "rescored");
            var (scoring, notes) = Scoring([t], p.GetValue(data), p.GetValue(judgeUrl), p.GetValue(judgeModel), p.GetValue(labeller), DefaultCacheDir());
            var summary = Rescorer.RescoreAsync(t, file, scoring, outDir, ct: ct).GetAwaiter().GetResult();
            Say(System.Text.Json.JsonSerializer.Serialize(summary, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            foreach (var n in notes.Values.SelectMany(x => x)) Note(n);
            Say($"-> {Path.GetFullPath(outDir)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The task named by the prediction lines' "task" field (ours carry it); one name, or a clear error.</summary>
    public static string TaskOfPredictions(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"--predictions {file}: no such file.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        var n = 0;
        foreach (var line in File.ReadLines(file))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (System.Text.Json.Nodes.JsonNode.Parse(line) is System.Text.Json.Nodes.JsonObject o && o["task"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<string>(out var name))
                    names.Add(name);
                else throw new ArgumentException($"{file}:{n}: no \"task\" field; give --task.");
            }
            catch (System.Text.Json.JsonException e) { throw new ArgumentException($"{file}:{n}: not a JSON object ({e.Message})."); }
        }
        return names.Count switch
        {
            0 => throw new ArgumentException($"{file}: no prediction lines."),
            1 => names.Single(),
            _ => throw new ArgumentException($"{file}: lines of several tasks ({string.Join(", ", names.Order())}); give --task."),
        };
    }
}
