using System.Diagnostics;
using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// The method's figures on a random Llama-family base/aligned pair of about 40M parameters (vocab 32000,
/// the Llama 2 tokenizer): extraction throughput, head-training throughput, their fraction of the matmul
/// peak, training memory for 10k vs 100k positions (each in a child process), and bytes on disk per position.
/// </summary>
internal static class MethodBench
{
    internal static string Shared => Environment.GetEnvironmentVariable("SUPERFICIAL_SHARED") is { Length: > 0 } s ? s
        : Directory.Exists("/work/shared") ? "/work/shared" : Path.GetFullPath("../shared");

    /// <summary>A random 40M model folder with the Llama 2 tokenizer.</summary>
    public static string MakeModel(string dir, int seed, ModelConfig? config = null)
    {
        if (File.Exists(Path.Combine(dir, "model.safetensors"))) return dir;
        using var m = CausalLM.Create(config ?? FoundationBench.Config40M() with { BosTokenId = 1, EosTokenIds = [2] }, seed);
        m.SaveHf(dir);
        foreach (var f in new[] { "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(Shared, "artifacts", "llama2", f), Path.Combine(dir, f), true);
        return dir;
    }

    public static void Run(bool quick)
    {
        var peak = Measure.MatmulPeakGflops();
        var c = FoundationBench.Config40M();
        Console.WriteLine($"\n== method: random Llama pair, {c.ParameterCount() / 1e6:0.0}M parameters each, vocab 32000");
        Console.WriteLine($"F32 matmul peak (2048^3, best of 5): {peak:0.0} GFLOP/s");
        var root = Path.Combine(Path.GetTempPath(), "superficial-bench-method");
        var baseDir = MakeModel(Path.Combine(root, "base"), 1);
        var alignedDir = MakeModel(Path.Combine(root, "aligned"), 2);

        // extraction
        int prompts = quick ? 8 : 16, maxNew = quick ? 32 : 64;
        var list = Enumerable.Range(0, prompts).Select(i => new ExtractionPrompt($"p{i}",
            new PromptSpec($"Question {i}: how many apples are in {i + 3} baskets of seven?\nAnswer:", $"Question {i}: how many apples are in {i + 3} baskets of seven?"))).ToList();
        var extDir = Path.Combine(root, "extract");
        if (Directory.Exists(extDir)) Directory.Delete(extDir, true);
        var watch = Stopwatch.StartNew();
        var summary = Extraction.Run(baseDir, alignedDir, list, "bench", extDir,
            new ExtractionOptions { TopK = 500, MaxNewTokens = maxNew, BatchSize = 8, ChunkSize = 8, ChatTemplate = "llama2", StopStrings = [] });
        double secs = watch.Elapsed.TotalSeconds;
        // FLOPs: aligned decoding with logits every step + the base model's one teacher-forced forward
        double flops = 2 * FoundationBench.ForwardFlops(c, summary.Positions, 60 + maxNew / 2.0, true);
        long bytes = Directory.GetFiles(Path.Combine(extDir, "chunks"), "*.safetensors").Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"extraction: {summary.Positions} generated tokens in {secs:0.0} s = {summary.Positions / secs:0.0} tokens/s " +
                          $"(batch 8, top-k 500, includes loading both models); {flops / secs / 1e9:0.0} GFLOP/s = {flops / secs / 1e9 / peak:P0} of peak");
        Console.WriteLine($"disk: {(double)bytes / summary.Positions:0} bytes per position (hidden F16 {c.HiddenSize * 2} + top-k ids/logits 500 x 8)");

        // head training throughput on the real extraction folder, then memory at 10k vs 100k positions
        var exe = Environment.ProcessPath!;
        var self = typeof(MethodBench).Assembly.Location;
        foreach (var n in quick ? new[] { 10_000 } : [10_000, 100_000])
        {
            var dir = Path.Combine(root, $"synthetic-{n}");
            WriteSynthetic(dir, n, c.HiddenSize, c.VocabSize, topK: 64);
            var psi = new ProcessStartInfo(exe, exe.EndsWith("dotnet") ? [self, "train-child", dir, baseDir] : ["train-child", dir, baseDir]) { RedirectStandardOutput = true };
            using var child = Process.Start(psi)!;
            var output = child.StandardOutput.ReadToEnd();
            child.WaitForExit();
            Console.WriteLine($"head training, {n} positions: {output.Trim()}");
        }
    }

    /// <summary>
    /// The 40M Llama shape as Gemma 2 (same hidden, layers, heads, head_dim and MLP width, tied head): GeGLU,
    /// sandwich norms, attention and final soft-caps at Gemma 2's defaults (50, 30), a 4096-key window on even layers.
    /// </summary>
    public static ModelConfig Gemma2Like40M()
    {
        var l = FoundationBench.Config40M();
        return ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "gemma2", ["vocab_size"] = l.VocabSize, ["hidden_size"] = l.HiddenSize, ["num_hidden_layers"] = l.NumLayers,
            ["num_attention_heads"] = l.NumHeads, ["num_key_value_heads"] = l.NumKvHeads, ["head_dim"] = l.HeadDim,
            ["intermediate_size"] = l.IntermediateSize, ["max_position_embeddings"] = l.MaxPositions,
            ["query_pre_attn_scalar"] = l.HeadDim, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        }, "gemma2-like");
    }

    /// <summary>
    /// One extraction run (8 prompts, 32 new tokens, top-k 500) on a random base/aligned pair of the 40M Llama shape or
    /// its Gemma-2-shaped twin, for timing the two families against each other as whole processes.
    /// </summary>
    public static void ExtractFamily(string family)
    {
        var config = family switch
        {
            "llama" => FoundationBench.Config40M() with { BosTokenId = 1, EosTokenIds = [2] },
            "gemma2" => Gemma2Like40M(),
            _ => throw new ArgumentException($"extract-family {family}: expected llama or gemma2."),
        };
        var root = Path.Combine(Path.GetTempPath(), "superficial-bench-family-" + family);
        var baseDir = MakeModel(Path.Combine(root, "base"), 1, config);
        var alignedDir = MakeModel(Path.Combine(root, "aligned"), 2, config);
        var list = Enumerable.Range(0, 8).Select(i => new ExtractionPrompt($"p{i}",
            new PromptSpec($"Question {i}: how many apples are in {i + 3} baskets of seven?\nAnswer:", $"Question {i}: how many apples are in {i + 3} baskets of seven?"))).ToList();
        var extDir = Path.Combine(root, "extract");
        if (Directory.Exists(extDir)) Directory.Delete(extDir, true);
        var watch = Stopwatch.StartNew();
        var summary = Extraction.Run(baseDir, alignedDir, list, "bench", extDir,
            new ExtractionOptions { TopK = 500, MaxNewTokens = 32, BatchSize = 8, ChunkSize = 8, ChatTemplate = "llama2", StopStrings = [] });
        Console.WriteLine($"{family} ({config.ParameterCount() / 1e6:0.0}M): {summary.Positions} positions in {watch.Elapsed.TotalSeconds:0.00} s");
    }

    /// <summary>An extraction folder of random positions (base hidden states, teacher top-k), for training-throughput runs.</summary>
    /// <param name="manifestFrom">A real extraction manifest to copy (models, settings); default: the method benchmark's.</param>
    internal static void WriteSynthetic(string dir, int positions, int hidden, int vocab, int topK, string? manifestFrom = null)
    {
        if (File.Exists(Path.Combine(dir, Extraction.ManifestName))) return;
        Directory.CreateDirectory(Path.Combine(dir, "chunks"));
        int chunk = 5000, chunks = (positions + chunk - 1) / chunk;
        var gen = new TorchSharp.torch.Generator(7);
        for (int i = 0; i < chunks; i++)
        {
            using var scope = NewDisposeScope();
            int n = Math.Min(chunk, positions - i * chunk);
            var h = randn([n, hidden], generator: gen).to_type(ScalarType.Float16);
            var (vals, ids) = randn([n, vocab], generator: gen).topk(topK, 1);
            var seq = arange(i * chunk, i * chunk + n, ScalarType.Int32).div(64, rounding_mode: RoundingMode.floor);
            SafeTensorsWriter.Write(Extraction.ChunkPath(dir, i, ".safetensors"), [
                KeyValuePair.Create("hidden", h), KeyValuePair.Create("topk_ids", ids.to_type(ScalarType.Int32)),
                KeyValuePair.Create("topk_logits", vals), KeyValuePair.Create("sequence", seq), KeyValuePair.Create("position", zeros_like(seq))]);
        }
        var m = JsonNode.Parse(File.ReadAllText(manifestFrom ?? Path.Combine(Path.GetTempPath(), "superficial-bench-method", "extract", Extraction.ManifestName)))!.AsObject();
        m["settings"]!["top_k"] = topK;
        m["chunks"] = chunks;
        File.WriteAllText(Path.Combine(dir, Extraction.ManifestName), m.ToJsonString());
    }

    /// <summary>Child process: one epoch of head training; prints throughput, fraction of peak, and peak anonymous memory.</summary>
    public static void TrainChild(string dataDir, string baseDir)
    {
        var peak = Measure.MatmulPeakGflops();
        using (var warm = zeros(1)) { }
        long baseAnon = Measure.StatusKb("RssAnon"), peakAnon = baseAnon;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(() => { while (!stop.IsCancellationRequested) { peakAnon = Math.Max(peakAnon, Measure.StatusKb("RssAnon")); Thread.Sleep(5); } });
        var data = ExtractionData.Open([dataDir]);
        using var w = ModelLoader.LoadLmHead(baseDir);
        var outPath = Path.Combine(dataDir, "head.safetensors");
        if (Directory.Exists(outPath + ".ckpt")) Directory.Delete(outPath + ".ckpt", true);
        var watch = Stopwatch.StartNew();
        HeadTrainer.Train(data, w, outPath, new HeadTrainingOptions { Epochs = 1, BatchSize = 1000, LearningRate = 1e-3 }).Head.Dispose();
        double secs = watch.Elapsed.TotalSeconds;
        stop.Cancel(); sampler.Wait();
        long h = data.HiddenSize, v = data.VocabSize, n = data.Positions;
        // per position: forward W(h + hA^T) ~ 2HV + 2H^2, backward to A ~ 2HV + 2H^2 (W is frozen); held-out pass ~ 2HV
        double flops = n * (4.0 * h * v + 4.0 * h * h) + 0.05 * n * 2.0 * h * v;
        Console.WriteLine($"{n / secs:0} positions/s (1 epoch incl. held-out pass, batch 1000, W projection dominates), " +
                          $"{flops / secs / 1e9:0.0} GFLOP/s = {flops / secs / 1e9 / peak:P0} of peak {peak:0} GFLOP/s; " +
                          $"peak anonymous memory +{(peakAnon - baseAnon) / 1024.0:0} MB (W alone {v * h * 4 / 1e6:0} MB)");
    }
}
