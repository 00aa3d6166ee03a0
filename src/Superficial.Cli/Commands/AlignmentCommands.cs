using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Models;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>extract and train-head: the paper's method.</summary>
internal static class AlignmentCommands
{
    public static void Add(RootCommand root)
    {
        root.Subcommands.Add(Extract());
        root.Subcommands.Add(TrainHead());
    }

    /// <summary>
    /// Extraction prompts from a source: a built-in task's extraction split (by name; real benchmarks read
    /// --data, organism tasks read --organism), or a JSONL file of {"prompt": ...} lines (optional "id",
    /// "raw", "user", "response_prefix").
    /// </summary>
    public static (IReadOnlyList<ExtractionPrompt> prompts, string source, IReadOnlyList<string> stops) ReadPrompts(
        string src, string? dataDir, string? organismDir, int? limit)
    {
        if (File.Exists(src))
        {
            var prompts = PromptFile.Read(src);
            return (limit is int l ? prompts.Take(l).ToList() : prompts, $"file {Path.GetFullPath(src)}", []);
        }
        if (Directory.Exists(src) || src.Contains('/') || src.Contains('\\') || Path.GetExtension(src) is ".jsonl" or ".json" or ".txt")
            throw new FileNotFoundException($"--prompts {src}: no such prompts file (a JSONL file of {{\"prompt\": ...}} lines, or a task name).", src);
        var task = TaskCatalog.Create(src, dataDir, organismDir);
        var split = task.ExtractionSplit();
        var list = (limit is int k ? split.Take(k) : split).Select(e => new ExtractionPrompt(e.Id, task.BuildPrompt(e))).ToList();
        return (list, $"task {task.Name} (extraction split)", task.StopStrings);
    }

    static Command Extract()
    {
        var baseDir = Opt<string>("--base", "Base model folder.", required: true);
        var aligned = Opt<string>("--aligned", "Aligned model folder (same vocabulary; extra trailing ids are dropped).", required: true);
        var prompts = Opt<string>("--prompts", "A task name (e.g. gsm, advbench, organism-safety) or a JSONL file of {\"prompt\": ...} lines.", required: true);
        var output = Opt<string>("--out", "Output folder (resumable: re-run the same command to continue).", required: true);
        var data = Opt<string?>("--data", "Folder of the real benchmark files (AdvBench, GSM8K, ToxiGen, TruthfulQA).");
        var organism = Opt<string?>("--organism", "Organism folder (superficial organism build) for organism-* tasks.");
        var topK = Opt("--top-k", "Aligned logits kept per position.", defaultValue: () => 500);
        var maxNew = Opt("--max-new-tokens", "Tokens the aligned model generates at most per prompt.", defaultValue: () => 512);
        var batch = Opt("--batch", "Prompts generated together.", defaultValue: () => 8);
        var chunk = Opt("--chunk", "Prompts per chunk file (the unit of resumption and of memory).", defaultValue: () => 32);
        var prefix = Opt<string?>("--response-prefix", "Text after the chat template's generation prompt (e.g. \"Answer:\"); default: the task's.");
        var limit = Opt<int?>("--limit", "Use only the first N prompts.");
        var f32 = Opt<bool>("--hidden-f32", "Store base hidden states in F32 instead of F16.");
        var template = Opt<string?>("--chat-template", "The aligned model's chat template (family name or .jinja file), if its tokenizer_config has none or it is not recognised.");
        var shard = Opt<string?>("--shard", "K/N: process the K-th (0-based) of N disjoint slices; default from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX.");
        var shardCount = Opt<int?>("--shard-count", "N for a Kubernetes Indexed Job (JOB_COMPLETION_INDEX gives K).");
        var truncatePrompts = Opt<bool>("--truncate-prompts", "Keep the last tokens of a prompt too long for a model's context (with a warning) instead of refusing it.");
        var preset = Opt<string?>("--preset", "paper: the reference implementation's extraction (generate to --max-new-tokens, no stop strings; top-k 500, 512 tokens as by default).");
        var overwrite = Opt<bool>("--overwrite", "Discard an extraction already in --out that was made with other settings (its manifest and chunks).");
        var run = new ModelRunOptions(seedHelp: "Recorded only: extraction decodes greedily.");
        var cmd = new Command("extract", "Step 1: the aligned model generates; record its top-k logits and the base model's hidden states.")
            { baseDir, aligned, prompts, output, data, organism, topK, maxNew, batch, chunk, prefix, limit, f32, template, shard, shardCount, truncatePrompts, preset, overwrite };
        run.AddTo(cmd);
        cmd.SetAction(Action((p, ct) =>
        {
            var settings = run.Read(p);
            var outDir = p.GetValue(output)!;
            if (p.GetValue(overwrite) && File.Exists(Path.Combine(outDir, Extraction.ManifestName)))
            {
                Note($"--overwrite: discarding the extraction in {Path.GetFullPath(outDir)}");
                File.Delete(Path.Combine(outDir, Extraction.ManifestName));
                if (Directory.Exists(Path.Combine(outDir, "chunks"))) Directory.Delete(Path.Combine(outDir, "chunks"), true);
            }
            RunRecord.Write(p, outDir, Cli.Args);
            var (list, source, stops) = ReadPrompts(p.GetValue(prompts)!, p.GetValue(data), p.GetValue(organism), p.GetValue(limit));
            if (Presets.Check(p.GetValue(preset)) == "paper") stops = [];
            var spec = ShardSpec.Resolve(p.GetValue(shard), p.GetValue(shardCount));
            var options = new ExtractionOptions
            {
                TopK = p.GetValue(topK), MaxNewTokens = p.GetValue(maxNew), BatchSize = p.GetValue(batch), ChunkSize = p.GetValue(chunk),
                ResponsePrefix = p.GetValue(prefix), StopStrings = stops, HiddenF32 = p.GetValue(f32), ChatTemplate = p.GetValue(template),
                Shard = spec, Dtype = settings.Dtype, TruncatePrompts = p.GetValue(truncatePrompts),
            };
            Note($"extracting from {list.Count} prompts ({source}), worker {spec}");
            var summary = WithProgress("extract", "chunks", progress => Extraction.Run(p.GetValue(baseDir)!, p.GetValue(aligned)!, list, source,
                p.GetValue(output)!, options,
                new Progress<ExtractionProgress>(e => progress.Report(ChunkFraction(e), e.ChunksTotal, $"{e.Positions} positions")), ct, Warn));
            Say($"{summary.ChunksDone} chunks extracted, {summary.ChunksSkipped} already complete; " +
                $"{summary.Positions} positions in {summary.Seconds:0.0} s" +
                (summary.Seconds > 0 && summary.Positions > 0 ? $" ({summary.Positions / summary.Seconds:0.0} generated tokens/s)" : "") +
                $" -> {Path.GetFullPath(p.GetValue(output)!)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Chunks done, counting the chunk in progress by its share of prompts done (one counter, never two).</summary>
    public static double ChunkFraction(ExtractionProgress e) =>
        Math.Min(e.ChunksTotal, e.ChunksDone + (e.PromptsTotal > 0 && e.PromptsDone < e.PromptsTotal ? (double)e.PromptsDone / e.PromptsTotal : 0));

    static Command TrainHead()
    {
        var data = new Option<string[]>("--extractions")
        {
            Description = "Extraction folder(s) (superficial extract --out). The old name --data still works but is deprecated.",
            Required = true, AllowMultipleArgumentsPerToken = true,
        };
        data.Aliases.Add("--data");
        var baseDir = Opt<string>("--base", "The base model the extraction used (its LM head W is needed).", required: true);
        var output = Opt<string>("--out", "Head file to write (.safetensors); a checkpoint folder beside it allows resuming.", required: true);
        var rank = Opt<int?>("--rank", "Low-rank head A = U V of this rank (default: full hidden x hidden).");
        var init = Opt("--init", "zero (start exactly at the base model) or random (the reference's nn.Linear init).", defaultValue: () => "zero");
        var lr = Opt("--lr", "Adam learning rate.", defaultValue: () => 1e-3);
        var batch = Opt("--batch", "Positions per step.", defaultValue: () => 1000);
        var epochs = Opt("--epochs", "Passes over the training positions.", defaultValue: () => 20);
        var topK = Opt<int?>("--top-k", "Teacher logits used per position (default: all stored).");
        var seed = Opt("--seed", "Seed for the split, shuffling and random init.", defaultValue: () => 0);
        var seeds = Opt<string?>("--seeds", "Train one head per seed (e.g. 0,1,2: different initialisation and data order; the held-out split stays --seed's); files HEAD-s<seed>.safetensors.");
        var ranks = Opt<string?>("--ranks", "Train one head per rank (e.g. 1,4,16,64,full); files HEAD-r<rank>.safetensors.");
        var preset = Opt<string?>("--preset", "paper: the reference implementation's training (nn.Linear init, Adam lr 1e-5, batch 1000, 1000 epochs, " +
                                                     "last 5% of positions held out, last epoch kept); options given explicitly still win.");
        var run = new ModelRunOptions(seedHelp: null, dtypeHelp: null); // its own --seed; the head trains in float32
        var cmd = new Command("train-head", "Step 2: distil the superficial head A so that W(h + A h) matches the aligned model's top-k.")
            { data, baseDir, output, rank, init, lr, batch, epochs, topK, seed, seeds, ranks, preset };
        run.AddTo(cmd);
        cmd.SetAction(Action((p, ct) =>
        {
            run.Read(p);
            if (p.GetResult(data)?.IdentifierToken?.Value == "--data")
                Note("warning: train-head --data is deprecated (elsewhere --data means benchmark files); use --extractions.");
            var ext = ExtractionData.Open(p.GetValue(data)!);
            var identity = ModelIdentity.Of(p.GetValue(baseDir)!);
            if (identity != ext.BaseIdentity)
                throw new ArgumentException($"--base {p.GetValue(baseDir)} (identity {identity}) is not the base model the extraction used (identity {ext.BaseIdentity}).");
            using var w = ModelLoader.LoadLmHead(p.GetValue(baseDir)!);
            var o = new HeadTrainingOptions
            {
                Rank = p.GetValue(rank), Init = Choices.Parse<HeadInit>("--init", p.GetValue(init)!), LearningRate = p.GetValue(lr), BatchSize = p.GetValue(batch),
                Epochs = p.GetValue(epochs), TopK = p.GetValue(topK), Seed = p.GetValue(seed),
                FinalLogitSoftcap = ModelConfig.Load(Path.Combine(p.GetValue(baseDir)!, "config.json")).FinalLogitSoftcap,
            };
            if (Presets.Check(p.GetValue(preset)) == "paper")
                o = Presets.PaperTraining(o, given: opt => p.GetResult(opt) is { Implicit: false }, init, lr, batch, epochs);
            Note($"training on {ext.Positions} positions from {ext.Folders.Count} extraction folder(s); hidden {ext.HiddenSize}, vocab {ext.VocabSize}");
            var runs = HeadRuns.Plan(p.GetValue(output)!, o, p.GetValue(seeds), p.GetValue(ranks), ext.HiddenSize);
            foreach (var (path, options) in runs)
            {
                if (runs.Count > 1) AnsiConsole.MarkupLine($"[bold]{Markup.Escape(path)}[/]: rank {options.Rank?.ToString() ?? "full"}, seed {options.InitSeed ?? options.Seed}");
                TrainOne(ext, w, path, options, ct);
            }
            if (runs.Count > 1) AnsiConsole.MarkupLine($"{runs.Count} heads: {Markup.Escape(string.Join(" ", runs.Select(r => r.Path)))}");
            return 0;
        }));
        return cmd;
    }

    static void TrainOne(ExtractionData ext, TorchSharp.torch.Tensor w, string outPath, HeadTrainingOptions o, CancellationToken ct)
    {
        var result = WithProgress("train-head", report => HeadTrainer.Train(ext, w, outPath, o,
            new Progress<HeadTrainingProgress>(e =>
            {
                report(e.Epoch - 1 + (double)e.PositionsDone / Math.Max(1, e.PositionsTotal), e.Epochs,
                    e.HeldOut is { } h ? $"epoch {e.Epoch}: held-out KL {h.Kl:0.0000}, top-1 {h.Top1:P1}" : $"epoch {e.Epoch}: KL {e.RunningKl:0.0000}");
                if (e.HeldOut is { } held && e.Train is { } tr)
                    AnsiConsole.MarkupLine($"epoch {e.Epoch}: train KL {tr.Kl:0.0000} top-1 {tr.Top1:P1} | held-out KL {held.Kl:0.0000} top-1 {held.Top1:P1} ({held.Positions} positions)");
            }), ct, Warn));
        AnsiConsole.MarkupLine($"{(result.Resumed ? "resumed; " : "")}best epoch {result.BestEpoch}: held-out KL {result.BestHeldOut.Kl:0.0000}, " +
                               $"top-1 agreement {result.BestHeldOut.Top1:P1} -> {Markup.Escape(Path.GetFullPath(outPath))}");
        result.Head.Dispose();
    }
}
