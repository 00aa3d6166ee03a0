using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Models;
using Superficial.Tensors;

namespace Superficial.Bench;

/// <summary>
/// A 7B-class pair on one machine: random models of Llama-2-7B's exact shape in BF16 (written here, never committed),
/// run through the real command line as child processes, with each step's wall time, time per token and peak resident
/// memory (mapped weight pages included). Steps: extract (the memory budget set so that base and aligned do not both
/// fit: one model at a time per chunk), train-head, eval (base, base+head, aligned), then a small pair of TinyLlama-1.1B's
/// shape (same vocabulary and tokenizer): extract, train-head, and eval with its head transferred to the 7B base (the
/// small and the large model side by side). <c>--layers N</c> keeps every width and the vocabulary of 7B but N layers.
/// </summary>
internal static class SevenBBench
{
    const double Gb = 1e9;
    /// <summary>transformers saved Llama-2-7B in shards of at most 10 GB (two files); scaled with the layer count so small runs shard too.</summary>
    const long FullShardBytes = 10_000_000_000;

    public static ModelConfig Large(int layers) => ModelConfig.Llama(vocabSize: 32000, hidden: 4096, layers: layers, heads: 32, kvHeads: 32,
        intermediate: 11008, maxPositions: 4096, ropeTheta: 10000, tieWordEmbeddings: false, bosId: 1, eosId: 2) with { TorchDtype = "bfloat16" };

    /// <summary>TinyLlama-1.1B's shape (22 layers, grouped-query attention 32/4), layers scaled as the large model's are.</summary>
    public static ModelConfig Small(int largeLayers) => ModelConfig.Llama(vocabSize: 32000, hidden: 2048,
        layers: largeLayers >= 32 ? 22 : Math.Max(1, (int)Math.Ceiling(largeLayers * 22 / 32.0)), heads: 32, kvHeads: 4,
        intermediate: 5632, maxPositions: 2048, ropeTheta: 10000, tieWordEmbeddings: false, bosId: 1, eosId: 2) with { TorchDtype = "bfloat16" };

    sealed record Step(string Name, ChildRun.Result Run, long Tokens, string TokenUnit, double? PerTokenSeconds, string Note);

    public static int Run(string[] args)
    {
        int layers = IntArg(args, "--layers") ?? 32;
        string dir = StrArg(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "superficial-seven-b");
        bool keep = args.Contains("--keep");
        int? threads = IntArg(args, "--threads");
        int prompts = IntArg(args, "--prompts") ?? 4, newTokens = IntArg(args, "--new-tokens") ?? 16;
        int examples = IntArg(args, "--examples") ?? 2, evalTokens = IntArg(args, "--eval-tokens") ?? 8;
        string data = StrArg(args, "--data") ?? Path.Combine(MethodBench.Shared, "data");
        string json = StrArg(args, "--json") ?? Path.Combine(Path.GetTempPath(), $"superficial-seven-b-L{layers}.json");
        const double limitGb = 20;
        if (layers < 1 || layers > 32) throw new ArgumentException($"--layers {layers}: expected 1 to 32 (Llama-2-7B has 32).");

        var large = Large(layers);
        var small = Small(layers);
        long shardBytes = FullShardBytes * layers / 32;
        long largeBytes = RandomCheckpoint.WeightBytes(large), smallBytes = RandomCheckpoint.WeightBytes(small);
        // room for one large model and its working memory, not for two
        long maxMemory = LongArg(args, "--max-memory") ?? (long)(largeBytes * 1.3);
        Console.WriteLine($"\n== seven-b: random Llama-2-7B shape (hidden 4096, intermediate 11008, 32/32 heads, vocab 32000, untied head, " +
                          $"rope theta 10000, 4096 positions) with {layers} of 32 layers: {large.ParameterCount() / 1e9:0.00}B parameters, " +
                          $"{largeBytes / Gb:0.00} GB in BF16 per model; small pair TinyLlama-1.1B shape with {small.NumLayers} of 22 layers: " +
                          $"{small.ParameterCount() / 1e9:0.00}B parameters, {smallBytes / Gb:0.00} GB; load average {Load()}");
        var full = (L: Large(32), S: Small(32));
        long fullDisk = 2 * RandomCheckpoint.FileBytes(full.L, FullShardBytes) + 2 * RandomCheckpoint.FileBytes(full.S, FullShardBytes);
        Console.WriteLine($"the full shape (--layers 32) needs {fullDisk / Gb:0.0} GB of disk for the four models " +
                          $"(2 x {RandomCheckpoint.WeightBytes(full.L) / Gb:0.00} + 2 x {RandomCheckpoint.WeightBytes(full.S) / Gb:0.00} GB) and one 7B model " +
                          $"({RandomCheckpoint.WeightBytes(full.L) / Gb:0.0} GB) resident at a time; a time estimate for it follows the run");

        var folders = new (string Name, ModelConfig Config, ulong Seed, RandomCheckpoint.Perturbation? P)[]
        {
            ("large-base", large, 1, null), ("large-aligned", large, 1, new(2, RandomCheckpoint.InitStd / 10)),
            ("small-base", small, 3, null), ("small-aligned", small, 3, new(4, RandomCheckpoint.InitStd / 10)),
        };
        Directory.CreateDirectory(dir);
        long needed = folders.Sum(f => Missing(Path.Combine(dir, f.Name), f.Config, shardBytes)) + (1L << 30);
        long free = new DriveInfo(Path.GetFullPath(dir)).AvailableFreeSpace;
        if (needed > free)
            throw new IOException($"{dir}: the models need {needed / Gb:0.0} GB more disk (with 1 GB for the runs' outputs), but only {free / Gb:0.0} GB is free. " +
                                  "Use --dir on a larger disk, or fewer --layers.");

        bool ok = false;
        var steps = new List<Step>();
        var generation = new List<JsonObject>();
        try
        {
            var tokenizer = Path.Combine(MethodBench.Shared, "artifacts", "llama2");
            foreach (var f in folders)
            {
                var w = System.Diagnostics.Stopwatch.StartNew();
                long written = RandomCheckpoint.Write(Path.Combine(dir, f.Name), f.Config, f.Seed, f.P, shardBytes, tokenizer);
                double s = w.Elapsed.TotalSeconds;
                Console.WriteLine($"{f.Name}: {(written == 0 ? "already written (kept)" : $"{written / Gb:0.00} GB written in {s:0.0} s = {written / Gb / s:0.00} GB/s")}");
                generation.Add(new JsonObject { ["model"] = f.Name, ["bytes_written"] = written, ["seconds"] = Math.Round(s, 2) });
            }

            var (exe, cli) = Cli();
            string[] common = ["--dtype", "bfloat16", "--progress", "lines", .. threads is int t ? new[] { "--threads", t.ToString() } : []];
            Step Child(string name, string[] a, Func<ChildRun.Result, (long, string, double?, string)> measure)
            {
                Console.WriteLine($"\n-- {name}: superficial {string.Join(' ', a)}");
                var r = ChildRun.Run(exe, [cli, .. a], line => Console.WriteLine("   | " + line));
                if (r.ExitCode != 0) throw new InvalidOperationException($"{name} failed (exit code {r.ExitCode}); its output is above.");
                var (tokens, unit, per, note) = measure(r);
                // mapped weight pages against one 7B-shaped model: ~1 means one large model at a time, never two
                note = (note.Length > 0 ? note + "; " : "") + $"file-mapped peak {(double)r.MaxFileBytes / largeBytes:0.00}x one large model";
                var step = new Step(name, r, tokens, unit, per, note);
                Console.WriteLine($"-- {name}: {r.Seconds:0.0} s, peak RSS {r.PeakRssBytes / Gb:0.00} GB (anonymous {r.MaxAnonBytes / Gb:0.00}, file-mapped {r.MaxFileBytes / Gb:0.00}){(note.Length > 0 ? "; " + note : "")}");
                steps.Add(step);
                return step;
            }
            string P(string name) => Path.Combine(dir, name);

            foreach (var (pair, b, a) in new[] { ("large", P("large-base"), P("large-aligned")), ("small", P("small-base"), P("small-aligned")) })
            {
                var ext = P($"{pair}-extract");
                if (Directory.Exists(ext)) Directory.Delete(ext, true);
                string[] budget = pair == "large" ? ["--max-memory", maxMemory.ToString(CultureInfo.InvariantCulture)] : [];
                Child($"extract ({pair} pair)", ["extract", "--base", b, "--aligned", a, "--prompts", "advbench", "--data", data, "--limit", $"{prompts}",
                    "--max-new-tokens", $"{newTokens}", "--top-k", "500", "--chat-template", "llama2", "--out", ext, .. budget, .. common], r =>
                {
                    long positions = Directory.GetFiles(Path.Combine(ext, "chunks"), "*.safetensors")
                        .Sum(f => { using var st = SafeTensorsFile.Open(f); return st.Entry("hidden").Shape[0]; });
                    bool apart = (r.Stderr + r.Stdout).Contains("one at a time per chunk");
                    if (pair == "large" && !apart)
                        throw new InvalidOperationException($"extract was given --max-memory {maxMemory / Gb:0.00} GB, less than both models, but did not run them one at a time.");
                    return (positions, "generated tokens", r.Seconds / positions, apart ? "one model at a time per chunk (from the log)" : "both models held together");
                });
                Child($"train-head ({pair} pair)", ["train-head", "--extractions", ext, "--base", b, "--out", P($"{pair}-head.safetensors"), "--epochs", "2",
                    .. threads is int t2 ? new[] { "--threads", t2.ToString() } : [], "--progress", "lines"], r =>
                {
                    var m = System.Text.RegularExpressions.Regex.Match(r.Stderr + r.Stdout, @"training on (\d+) positions");
                    long positions = m.Success ? long.Parse(m.Groups[1].Value) * 2 : 0;
                    return (positions, "positions x 2 epochs (held-out passes included in the time)", positions > 0 ? r.Seconds / positions : null, "");
                });
            }

            // eval: base, base+head, aligned on the 7B pair; then the small head transferred to the 7B base (small model beside)
            // eval under a budget too: one 7B model at a time (plus the small one beside it for transfer)
            Step Eval(string name, string outDir, long budget, string[] models)
            {
                if (Directory.Exists(outDir)) Directory.Delete(outDir, true);
                return Child(name, ["eval", .. models, "--max-memory", budget.ToString(CultureInfo.InvariantCulture), "--tasks", "advbench", "--data", data, "--limit", $"{examples}", "--batch", $"{examples}",
                    "--max-new-tokens", $"{evalTokens}", "--chat-template", "llama2", "--out", outDir, .. common], r =>
                {
                    var runs = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!["timings"]!["runs"]!.AsArray();
                    double gen = runs.Sum(x => x!["generate_s"]!.GetValue<double>());
                    long tokens = (long)runs.Count * examples * evalTokens;
                    var per = string.Join(", ", runs.Select(x => $"{x!["variant"]} {x["generate_s"]!.GetValue<double>() / (examples * evalTokens):0.00} s/token"));
                    return (tokens, "tokens (at most; examples x max new tokens per variant)", gen / tokens, $"generation per variant: {per}");
                });
            }
            Eval("eval (7B: base, base+head, aligned)", P("large-eval"), maxMemory, ["--base", P("large-base"), "--aligned", P("large-aligned"), "--head", P("large-head.safetensors")]);
            Eval("eval transfer (small head on the 7B base)", P("transfer-eval"), maxMemory + smallBytes,
                ["--base", P("large-base"), "--aligned", P("large-aligned"), "--head", P("small-head.safetensors"), "--transfer-from", P("small-base")]);
            ok = true;
        }
        finally
        {
            Report(steps, generation, layers, large, small, maxMemory, limitGb, json);
            if (ok && !keep) { Directory.Delete(dir, true); Console.WriteLine($"deleted {dir} (--keep keeps it)"); }
            else Console.WriteLine(ok ? $"kept {dir}" : $"kept {dir} for a rerun (generation resumes; files already written are kept); delete it with rm -rf {dir}");
        }
        return steps.All(s => s.Run.PeakRssBytes < limitGb * Gb) ? 0 : 3;
    }

    static void Report(List<Step> steps, List<JsonObject> generation, int layers, ModelConfig large, ModelConfig small, long maxMemory, double limitGb, string json)
    {
        if (steps.Count == 0) return;
        double scale = (double)RandomCheckpoint.WeightBytes(Large(32)) / RandomCheckpoint.WeightBytes(large);
        Console.WriteLine($"\n| step | wall s | peak RSS GB | anonymous GB | file-mapped GB | tokens | s per token | under {limitGb:0} GB |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var s in steps)
            Console.WriteLine($"| {s.Name} | {s.Run.Seconds:0.0} | {s.Run.PeakRssBytes / Gb:0.00} | {s.Run.MaxAnonBytes / Gb:0.00} | {s.Run.MaxFileBytes / Gb:0.00} | " +
                              $"{(s.Tokens > 0 ? s.Tokens.ToString() : "-")} | {(s.PerTokenSeconds is double p ? p.ToString("0.000") : "-")} | {(s.Run.PeakRssBytes < limitGb * Gb ? "yes" : "NO")} |");
        foreach (var s in steps.Where(s => s.Note.Length > 0)) Console.WriteLine($"{s.Name}: {s.Note}");
        if (layers < 32)
            Console.WriteLine($"estimate for --layers 32: the models' steps read about {scale:0.0}x the weights per token, so expect up to ~{scale:0.0}x these " +
                              $"wall times and times per token (less where start-up and the LM head dominate), {steps.Sum(s => s.Run.Seconds) * scale / 60:0} min in all " +
                              $"on this machine at this load, plus writing the models at the GB/s shown above");
        var o = new JsonObject
        {
            ["date"] = DateTime.UtcNow.ToString("o"), ["load_average"] = Load(), ["cores"] = Environment.ProcessorCount,
            ["layers"] = layers, ["large"] = large.ToJson(), ["small"] = small.ToJson(),
            ["large_bytes"] = RandomCheckpoint.WeightBytes(large), ["small_bytes"] = RandomCheckpoint.WeightBytes(small),
            ["extract_max_memory"] = maxMemory, ["limit_bytes"] = (long)(limitGb * Gb),
            ["generation"] = new JsonArray(generation.Select(g => (JsonNode)g.DeepClone()).ToArray()),
            ["steps"] = new JsonArray(steps.Select(s => (JsonNode)new JsonObject
            {
                ["step"] = s.Name, ["wall_s"] = Math.Round(s.Run.Seconds, 2), ["peak_rss_bytes"] = s.Run.PeakRssBytes,
                ["max_anon_bytes"] = s.Run.MaxAnonBytes, ["max_file_bytes"] = s.Run.MaxFileBytes, ["samples"] = s.Run.Samples,
                ["tokens"] = s.Tokens, ["token_unit"] = s.TokenUnit, ["s_per_token"] = s.PerTokenSeconds is double p ? Math.Round(p, 4) : null,
                ["note"] = s.Note, ["under_limit"] = s.Run.PeakRssBytes < limitGb * Gb,
            }).ToArray()),
        };
        File.WriteAllText(json, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"written: {json}");
    }

    /// <summary>Bytes of the folder's shard files not yet written at their full size.</summary>
    static long Missing(string dir, ModelConfig c, long shardBytes)
    {
        var shards = RandomCheckpoint.Shards(c, shardBytes);
        long total = RandomCheckpoint.FileBytes(c, shardBytes);
        for (int i = 0; i < shards.Count; i++)
        {
            var f = new FileInfo(Path.Combine(dir, RandomCheckpoint.ShardName(i, shards.Count)));
            if (f.Exists) total -= Math.Min(total, f.Length);
        }
        return total;
    }

    /// <summary>The built command line (dotnet + Superficial.Cli.dll), built first by the repository's ./superficial script if stale.</summary>
    static (string Exe, string Dll) Cli()
    {
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "Superficial.slnx"))) root = Path.GetDirectoryName(root.TrimEnd('/'));
        if (root is null) throw new InvalidOperationException("cannot find the repository (Superficial.slnx) above the bench's folder.");
        var build = ChildRun.Run(Path.Combine(root, "superficial"), ["--help"]);
        if (build.ExitCode != 0) throw new InvalidOperationException($"./superficial --help failed:\n{build.Stderr}");
        return ("dotnet", Path.Combine(root, "src", "Superficial.Cli", "bin", "Release", "net10.0", "Superficial.Cli.dll"));
    }

    static string Load() => File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Aggregate((a, b) => a + " " + b);
    static string? StrArg(string[] args, string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
    static int? IntArg(string[] args, string name) => StrArg(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : null;

    /// <summary>Bytes, or with a unit: 18GB, 1.5GiB.</summary>
    static long? LongArg(string[] args, string name)
    {
        if (StrArg(args, name) is not { } s) return null;
        var m = System.Text.RegularExpressions.Regex.Match(s.Trim(), @"^([0-9.]+)\s*(GB|GiB|MB|MiB)?$", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        if (!m.Success) throw new ArgumentException($"{name} {s}: expected bytes or e.g. 18GB.");
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return (long)(v * (m.Groups[2].Value.ToUpperInvariant() switch { "GB" => 1e9, "GIB" => 1L << 30, "MB" => 1e6, "MIB" => 1L << 20, _ => 1 }));
    }
}
