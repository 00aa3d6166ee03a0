using System.Diagnostics;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// Extraction, decoding and head training against this machine's roofline, every limit measured in the same run:
/// the matmul peak (F32 and BF16 GEMM, 2048^3) and the memory bandwidth (a 256 MB tensor copy). For each setting,
/// tokens/s &lt;= min(peak / FLOPs per token, bandwidth x batch / bytes read per step), and the throughput is
/// reported as a fraction of that bound. The model pair is the issue's: two random Llama models of 43.7M
/// parameters (vocab 32000, the Llama 2 tokenizer), 16 GSM-like prompts x 64 new tokens, top-k 500. A per-stage
/// profile of extraction follows (where the time goes), measured by running each stage alone on the same batch.
/// </summary>
internal static class RooflineBench
{
    /// <summary>
    /// The limits: the F32 matmul peak is the faster of libtorch's GEMM and SkinnyLinear's (which takes products of
    /// any row count where its 16-lane tiles run and libtorch's GEMM does not), so the kernel never beats "the peak".
    /// </summary>
    sealed record Limits(double LibtorchF32Gflops, double KernelF32Gflops, double LibtorchBf16Gflops, double KernelBf16Gflops, double BandwidthGBs)
    {
        public double F32Gflops => Math.Max(LibtorchF32Gflops, KernelF32Gflops);
        public double Bf16Gflops => Math.Max(LibtorchBf16Gflops, KernelBf16Gflops);
        public double Peak(ScalarType t) => t == ScalarType.BFloat16 ? Bf16Gflops : F32Gflops;
        public static Limits Max(Limits a, Limits b) =>
            new(Math.Max(a.LibtorchF32Gflops, b.LibtorchF32Gflops), Math.Max(a.KernelF32Gflops, b.KernelF32Gflops),
                Math.Max(a.LibtorchBf16Gflops, b.LibtorchBf16Gflops), Math.Max(a.KernelBf16Gflops, b.KernelBf16Gflops), Math.Max(a.BandwidthGBs, b.BandwidthGBs));
        public override string ToString() => $"F32 {F32Gflops:0} (libtorch {LibtorchF32Gflops:0}) / BF16 {Bf16Gflops:0} (libtorch {LibtorchBf16Gflops:0}) GFLOP/s, {BandwidthGBs:0.0} GB/s";
    }

    /// <summary>
    /// Runs a measurement between two measurements of the limits and returns the better limits of the two: on a
    /// shared machine the load changes within minutes, so each row is compared with what the machine gave around it.
    /// </summary>
    static Limits Around(Action run)
    {
        var before = MeasureLimits();
        run();
        return Limits.Max(before, MeasureLimits());
    }

    /// <summary>
    /// The notes' second figure: the same throughput by CPU time and its share of the roofline. The limits are still
    /// wall-clock measurements, which load lowers: under load this share reads high; on a quiet machine both agree.
    /// </summary>
    static string ByCpu(double units, double cpuSeconds, (double bound, string by) roof, string unit) =>
        $"by CPU time {units / cpuSeconds:0.0} {unit} = {units / cpuSeconds / roof.bound:P0}";

    static string Load() => File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Aggregate((a, b) => a + " " + b);

    /// <summary>
    /// Best-of-n GFLOP/s of an n^3 matmul in <paramref name="dtype"/>: 2048^3, or 512^3 where one 512^3 product already
    /// takes over 0.1 s (libtorch's BF16 GEMM on a CPU without BF16 instructions runs at about 0.3 GFLOP/s, and three
    /// 2048^3 products would take minutes around every row).
    /// </summary>
    static double Gemm(ScalarType dtype, int n = 2048, int reps = 3)
    {
        using (var a0 = randn(512, 512).to_type(dtype))
        using (var b0 = randn(512, 512).to_type(dtype))
        {
            var w = Stopwatch.StartNew();
            a0.matmul(b0).Dispose();
            if (w.Elapsed.TotalSeconds > 0.1) n = 512;
        }
        using var a = randn(n, n).to_type(dtype);
        using var b = randn(n, n).to_type(dtype);
        double s = Best(() => a.matmul(b).Dispose(), reps);
        return 2.0 * n * n * n / s / 1e9;
    }

    /// <summary>
    /// Best-of-n GFLOP/s of SkinnyLinear on a 2048 x 512 x 2048 product in <paramref name="dtype"/> (the bench models' width; at k = 2048 its
    /// x rows outgrow L1 and it measured 89-122, so the wider product would understate what it does here), or 0
    /// where it declines (libtorch's GEMM then runs every product).
    /// </summary>
    static double KernelGemm(ScalarType dtype = ScalarType.Float32, int m = 2048, int k = 512, int n = 2048, int reps = 3)
    {
        using var noGrad = no_grad();
        using var a = randn(m, k).to_type(dtype);
        using var b = randn(n, k).to_type(dtype);
        if (SkinnyLinear.TryForward(a, b, null) is not Tensor probe) return 0;
        probe.Dispose();
        double s = Best(() => SkinnyLinear.TryForward(a, b, null)!.Dispose(), reps);
        return 2.0 * m * k * n / s / 1e9;
    }

    /// <summary>GB/s of a large copy: bytes read plus bytes written (STREAM's "copy" convention).</summary>
    static double Bandwidth(long bytes = 256L << 20, int reps = 3)
    {
        using var src = rand(bytes / 4);
        using var dst = empty(bytes / 4);
        double s = Best(() => dst.copy_(src), reps);
        return 2.0 * bytes / s / 1e9;
    }

    static double Best(Action run, int reps)
    {
        run(); run();
        double best = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            var w = Stopwatch.StartNew();
            run();
            best = Math.Min(best, w.Elapsed.TotalSeconds);
        }
        return best;
    }

    static Limits MeasureLimits() => new(Gemm(ScalarType.Float32), KernelGemm(), Gemm(ScalarType.BFloat16), KernelGemm(ScalarType.BFloat16), Bandwidth());

    /// <summary>The 16 GSM-like prompts of the issue's benchmark.</summary>
    public static List<ExtractionPrompt> Prompts(int count) => Enumerable.Range(0, count).Select(i => new ExtractionPrompt($"p{i}",
        new PromptSpec($"Question {i}: how many apples are in {i + 3} baskets of seven?\nAnswer:",
                       $"Question {i}: how many apples are in {i + 3} baskets of seven?"))).ToList();

    /// <summary>Bytes of weights a decoding step reads: every matrix but the embedding rows it does not touch (tied: the head reads them all).</summary>
    static long WeightBytes(ModelConfig c, ScalarType dtype)
    {
        long elem = dtype == ScalarType.Float32 ? 4 : 2;
        long p = c.ParameterCount();
        if (!c.TieWordEmbeddings) p -= (long)c.VocabSize * c.HiddenSize; // the input embedding: only the batch's rows are read
        return p * elem;
    }

    /// <summary>Bytes of keys and values one sequence's decoding step reads at context <paramref name="ctx"/>.</summary>
    static long KvBytes(ModelConfig c, double ctx, ScalarType dtype) =>
        (long)(2.0 * c.NumLayers * ctx * c.NumKvHeads * c.HeadDim * (dtype == ScalarType.Float32 ? 4 : 2));

    /// <summary>tokens/s bound: min(compute, bandwidth x batch / bytes read per step).</summary>
    static (double bound, string by) Roofline(double peakGflops, double flopsPerToken, double bandwidthGBs, double batch, double bytesPerStep)
    {
        double compute = peakGflops * 1e9 / flopsPerToken;
        double memory = bandwidthGBs * 1e9 * batch / bytesPerStep;
        return compute <= memory ? (compute, "compute") : (memory, "bandwidth");
    }

    static void Row(string what, double rate, string unit, (double bound, string by) roof, Limits l, string note = "") =>
        Console.WriteLine($"| {what} | {rate:0.0} {unit} | {roof.bound:0} ({roof.by}) | {rate / roof.bound:P0} | {l} | {note} |");

    public static void Run(bool quick, string[] args)
    {
        int reps = Arg(args, "--reps") ?? 1;
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        int? chosen = Arg(args, "--batch");
        Console.WriteLine($"\n== roofline: load average at start {Load()}");
        var limits = MeasureLimits();
        Console.WriteLine($"matmul peak 2048^3 (best of 3): F32 {limits.F32Gflops:0.0} GFLOP/s (libtorch {limits.LibtorchF32Gflops:0.0}, SkinnyLinear {limits.KernelF32Gflops:0.0} at 2048 x 512 x 2048), BF16 {limits.Bf16Gflops:0.0} GFLOP/s (libtorch {limits.LibtorchBf16Gflops:0.0}, at 512^3 where one such product takes over 0.1 s; SkinnyLinear {limits.KernelBf16Gflops:0.0}, where libtorch has no BF16 instructions); " +
                          $"copy bandwidth (256 MB, read + write, best of 3): {limits.BandwidthGBs:0.0} GB/s; each row's limits are re-measured just before and after it (the better kept)");
        Console.WriteLine($"the core's F32 multiply-add peak (FmaPeak): {FmaPeak.Gflops(false):0.0} GFLOP/s at 8 lanes" +
                          (System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? $", {FmaPeak.Gflops(true):0.0} at 16 lanes" : "") + " (no product reaches it: context for the peak above)");
        var c = FoundationBench.Config40M() with { BosTokenId = 1, EosTokenIds = [2] };
        Console.WriteLine($"model pair: random Llama, {c.ParameterCount() / 1e6:0.0}M parameters each, {WeightBytes(c, dtype) / 1e6:0} MB of " +
                          $"{ModelRunOptionsName(dtype)} weights read per decoding step; compute dtype {ModelRunOptionsName(dtype)}");
        var root = Path.Combine(Path.GetTempPath(), "superficial-bench-roofline");
        var baseDir = MethodBench.MakeModel(Path.Combine(root, "base"), 1, c);
        var alignedDir = MethodBench.MakeModel(Path.Combine(root, "aligned"), 2, c);
        var prompts = Prompts(16);
        const int maxNew = 64, topK = 500;
        var tok = TextTokenizer.Load(alignedDir);
        var chat = tok.GetChatTemplate("llama2");
        double chatLen = prompts.Average(p => PromptFormat.Encode(tok, p.Spec, chat).Count);
        double rawLen = prompts.Average(p => PromptFormat.Encode(tok, p.Spec, null).Count);
        // Per generated token: one aligned decoding step with the LM head at the mean context, plus the base model's
        // teacher-forced forward over it (no LM head). Prompt prefill is overhead, not counted as useful work.
        double ctx = chatLen + maxNew / 2.0;
        double flopsPerToken = FoundationBench.ForwardFlops(c, 1, ctx, true) + FoundationBench.ForwardFlops(c, 1, rawLen + maxNew / 2.0, false);
        double bytesPerStep(int batch) => WeightBytes(c, dtype) + batch * KvBytes(c, ctx, dtype);

        Console.WriteLine($"prompts: {prompts.Count} x {maxNew} new tokens, top-k {topK}; chat prompt {chatLen:0.0} tokens, raw {rawLen:0.0} (mean); " +
                          $"useful FLOPs per generated token {flopsPerToken / 1e6:0.0} M");
        Console.WriteLine("\n| setting | throughput | roofline | % of roofline | limits around the row | notes |\n| --- | --- | --- | --- | --- | --- |");
        // the library's default batch: 8 before continuous batching; since then chosen from the memory budget (at most the
        // prompt count, 16 here), which the roofline of the "default" row assumes
        var defaultProp = typeof(ExtractionOptions).GetProperty("BatchSize")!.GetValue(new ExtractionOptions()) as int?;
        var settings = new List<(string Label, int? Batch, int RoofBatch)> { ("batch 1", 1, 1), ("batch 8", 8, 8) };
        if (chosen is int cb) settings.Add(($"batch {cb}", cb, cb));
        else if (defaultProp is null) settings.Add(("default batch (from the memory budget)", null, prompts.Count));
        if (args.Contains("--profile-only"))
        {
            Profile(baseDir, alignedDir, prompts, dtype, maxNew, topK, Arg(args, "--profile-batch") ?? 8);
            return;
        }
        foreach (var (label, batch, roofBatch) in settings)
        {
            double best = double.MaxValue, bestCpu = double.MaxValue;
            long positions = 0;
            var l = Around(() => { for (int r = 0; r < reps; r++)
            {
                var extDir = Path.Combine(root, $"extract-{(batch is int b ? b.ToString() : "auto")}");
                if (Directory.Exists(extDir)) Directory.Delete(extDir, true);
                var o = new ExtractionOptions { TopK = topK, MaxNewTokens = maxNew, ChunkSize = 16, ChatTemplate = "llama2", StopStrings = [], Dtype = dtype };
                if (batch is int bb) typeof(ExtractionOptions).GetProperty("BatchSize")!.SetValue(o, bb); // int before, int? after the change
                var w = Stopwatch.StartNew();
                double c0 = Measure.CpuSeconds();
                var s = Extraction.Run(baseDir, alignedDir, prompts, "bench", extDir, o);
                best = Math.Min(best, w.Elapsed.TotalSeconds);
                bestCpu = Math.Min(bestCpu, Measure.CpuSeconds() - c0);
                positions = s.Positions;
            } });
            var roof = Roofline(l.Peak(dtype), flopsPerToken, l.BandwidthGBs, roofBatch, bytesPerStep(roofBatch));
            Row($"extraction, {label}{(batch == defaultProp ? " (default)" : "")}", positions / best, "tokens/s", roof, l,
                $"{positions} tokens in {best:0.00} s, best of {reps}, loading both models included; {ByCpu(positions, bestCpu, roof, "tokens/s")}");
        }

        // Decoding at batch 1 with the generator users run (argmax and host copy each step), at three contexts (960: where the cache is a sixth of the bytes a step reads).
        using (var model = CausalLM.Load(alignedDir, dtype))
        {
            var gen = new TextGenerator(model, null);
            foreach (var promptLen in new[] { 64, 448, 960 })
            {
                var prompt = Enumerable.Range(0, promptLen).Select(i => 3 + (i * 7919) % 31000).ToArray();
                int steps = 64;
                var o = new GenerationOptions { MaxNewTokens = steps, BatchSize = 1, StopIds = [] };
                gen.Generate([prompt], o with { MaxNewTokens = 4 });
                // Timed between the first step's token and the last's (StepClock), so the prompt's prefill is not in
                // it. Until stop 26 the bench subtracted a separately timed 1-token run from the whole run instead; at
                // context 448 that prefill is a third of the run, and its spread between runs moved the per-token
                // figure by up to ~0.5 ms. Both are printed.
                double best = double.MaxValue, bestCpu = double.MaxValue, bestWhole = double.MaxValue, prefill = 0;
                var l = Around(() =>
                {
                    for (int r = 0; r < reps + 1; r++)
                    {
                        var clock = new StepClock(steps);
                        var w = Stopwatch.StartNew();
                        gen.Generate([prompt], o, observer: clock);
                        bestWhole = Math.Min(bestWhole, w.Elapsed.TotalSeconds);
                        best = Math.Min(best, clock.Seconds / (steps - 1));
                        bestCpu = Math.Min(bestCpu, clock.CpuSeconds / (steps - 1));
                    }
                    prefill = Measure.Seconds(() => gen.Generate([prompt], o with { MaxNewTokens = 1 }), reps: 3, warmup: 0);
                });
                double perTok = best, perTokCpu = bestCpu, perTokOld = (bestWhole - prefill) / (steps - 1);
                double dctx = promptLen + steps / 2.0;
                var roof = Roofline(l.Peak(dtype), FoundationBench.ForwardFlops(c, 1, dctx, true), l.BandwidthGBs, 1, WeightBytes(c, dtype) + KvBytes(c, dctx, dtype));
                Row($"decode, batch 1, context {promptLen}-{promptLen + steps}", 1 / perTok, "tokens/s", roof, l, $"{perTok * 1000:0.00} ms/token from the first token to the last (no prefill), best of {reps + 1}; the whole run less a 1-token run (the bench's figure before stop 26): {perTokOld * 1000:0.00} ms/token; {ByCpu(1, perTokCpu, roof, "tokens/s")}");
            }
        }

        // Head training on 10k random positions (top-k 64), one epoch with its held-out pass.
        {
            var dir = Path.Combine(root, "synthetic-10000");
            MethodBench.WriteSynthetic(dir, 10_000, c.HiddenSize, c.VocabSize, topK: 64, Path.Combine(root, "extract-8", Extraction.ManifestName));
            var data = ExtractionData.Open([dir]);
            using var w = ModelLoader.LoadLmHead(baseDir);
            var outPath = Path.Combine(dir, "head.safetensors");
            double best = double.MaxValue, bestCpu = double.MaxValue;
            var l = Around(() => { for (int r = 0; r < reps; r++)
            {
                if (Directory.Exists(outPath + ".ckpt")) Directory.Delete(outPath + ".ckpt", true);
                var watch = Stopwatch.StartNew();
                double c0 = Measure.CpuSeconds();
                HeadTrainer.Train(data, w, outPath, new HeadTrainingOptions { Epochs = 1, BatchSize = 1000, LearningRate = 1e-3 }).Head.Dispose();
                best = Math.Min(best, watch.Elapsed.TotalSeconds);
                bestCpu = Math.Min(bestCpu, Measure.CpuSeconds() - c0);
            } });
            long h = c.HiddenSize, v = c.VocabSize, n = data.Positions;
            double flopsPerPos = 4.0 * h * v + 4.0 * h * h + 0.05 * 2.0 * h * v;
            // W (F32) is read once per 1000-position batch: bandwidth is never the limit here
            var roof = Roofline(l.F32Gflops, flopsPerPos, l.BandwidthGBs, 1000, v * h * 4.0);
            Row("head training (F32)", n / best, "positions/s", roof, l, $"{n} positions, 1 epoch + held-out pass, batch 1000, best of {reps}; {ByCpu(n, bestCpu, roof, "positions/s")}");
        }

        if (!args.Contains("--no-profile")) Profile(baseDir, alignedDir, prompts, dtype, maxNew, topK, Arg(args, "--profile-batch") ?? 8);
        Console.WriteLine($"\nload average at end {Load()}");
    }

    static int? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : null;
    }

    static string ModelRunOptionsName(ScalarType t) => t == ScalarType.BFloat16 ? "BF16" : "F32";

    /// <summary>
    /// Where extraction's time goes at one batch, in CPU seconds of this process (steadier than wall time on a shared
    /// machine; with --threads 1 it is the work done): each stage run alone, once, on the same 16 prompts — loading,
    /// the aligned model's decoding alone, decoding with top-k and its host copies per step, the top-k kernel alone,
    /// the base model's teacher-forced forward, and assembling + writing the shard — against the whole Extraction.Run
    /// at that batch (the table's row).
    /// </summary>
    static void Profile(string baseDir, string alignedDir, List<ExtractionPrompt> prompts, ScalarType dtype, int maxNew, int topK, int batch)
    {
        Console.WriteLine($"\nper-stage profile of extraction at batch {batch} ({prompts.Count} prompts x {maxNew} tokens, top-k {topK}), CPU seconds, each stage once:");
        var times = new Dictionary<string, double>();
        void Time(string stage, Action a) { double c0 = Measure.CpuSeconds(); a(); times[stage] = Measure.CpuSeconds() - c0; }
        var root = Path.GetDirectoryName(baseDir)!;
        Time("whole Extraction.Run, first in the process (JIT warm-up)", () =>
        {
            var d = Path.Combine(root, "extract-profile");
            if (Directory.Exists(d)) Directory.Delete(d, true);
            Extraction.Run(baseDir, alignedDir, prompts, "bench", d, new ExtractionOptions
            { TopK = topK, MaxNewTokens = maxNew, BatchSize = batch, ChunkSize = 16, ChatTemplate = "llama2", StopStrings = [], Dtype = dtype });
        });
        Time("whole Extraction.Run", () =>
        {
            var d = Path.Combine(root, "extract-profile");
            if (Directory.Exists(d)) Directory.Delete(d, true);
            Extraction.Run(baseDir, alignedDir, prompts, "bench", d, new ExtractionOptions
            { TopK = topK, MaxNewTokens = maxNew, BatchSize = batch, ChunkSize = 16, ChatTemplate = "llama2", StopStrings = [], Dtype = dtype });
        });
        Time("load both models", () => { CausalLM.Load(baseDir, dtype).Dispose(); CausalLM.Load(alignedDir, dtype).Dispose(); });
        Time("model identity (hash, cached)", () => { ModelIdentity.Of(baseDir); ModelIdentity.Of(alignedDir); });
        Time("load both tokenizers", () => { TextTokenizer.Load(baseDir); TextTokenizer.Load(alignedDir); });
        using var baseModel = CausalLM.Load(baseDir, dtype);
        using var aligned = CausalLM.Load(alignedDir, dtype);
        var tok = TextTokenizer.Load(alignedDir);
        var chat = tok.GetChatTemplate("llama2");
        var chatIds = prompts.Select(p => PromptFormat.Encode(tok, p.Spec, chat)).ToArray();
        var rawIds = prompts.Select(p => PromptFormat.Encode(tok, p.Spec, null)).ToArray();
        var gen = new TextGenerator(aligned, tok);
        var o = new GenerationOptions { MaxNewTokens = maxNew, BatchSize = batch, StopStrings = [] };
        IReadOnlyList<GenerationResult>[] results = new IReadOnlyList<GenerationResult>[(prompts.Count + batch - 1) / batch];
        Time("aligned decoding alone (argmax, host copy of the ids)", () =>
        {
            for (int b0 = 0, i = 0; b0 < prompts.Count; b0 += batch, i++) results[i] = gen.Generate(chatIds.Skip(b0).Take(batch).ToArray(), o);
        });
        Time("aligned decoding + top-k + host copies per step", () =>
        {
            for (int b0 = 0; b0 < prompts.Count; b0 += batch) gen.Generate(chatIds.Skip(b0).Take(batch).ToArray(), o, null, new TopKCopy(topK, aligned.VocabSize));
        });
        float[] randomRows;
        using (var r = randn(batch, aligned.VocabSize)) randomRows = r.data<float>().ToArray();
        Time("  top-k kernel alone (TopK.Row, as extraction runs it, on as many rows)", () =>
        {
            var v = new float[topK];
            var ix = new int[topK];
            for (int s = 0; s < maxNew * prompts.Count / batch; s++)
                for (int r = 0; r < batch; r++) TopK.Row(randomRows.AsSpan(r * aligned.VocabSize, aligned.VocabSize), v, ix);
        });
        var hidden = new List<Tensor>();
        Time("base teacher-forced forward", () =>
        {
            foreach (var t in hidden) t.Dispose();
            hidden.Clear();
            for (int b0 = 0, i = 0; b0 < prompts.Count; b0 += batch, i++)
                hidden.AddRange(Extraction.TeacherForcedHidden(baseModel, rawIds.Skip(b0).Take(batch).ToArray(), results[i].Select(r => r.TokenIds).ToArray()));
        });
        Time("shard assembling + writing (F16 hidden, top-k ids + logits)", () =>
        {
            using var scope = NewDisposeScope();
            int n = hidden.Sum(h => (int)h.shape[0]);
            var h = cat(hidden.Select(x => x.to_type(ScalarType.Float16)).ToList(), 0);
            var ids = tensor(new int[n * topK], [n, topK], ScalarType.Int32);
            var lg = tensor(new float[n * topK], [n, topK], ScalarType.Float32);
            SafeTensorsWriter.Write(Path.Combine(root, "profile-shard.safetensors"), [KeyValuePair.Create("hidden", h), KeyValuePair.Create("topk_ids", ids), KeyValuePair.Create("topk_logits", lg)]);
        });
        foreach (var t in hidden) t.Dispose();
        double whole = times["whole Extraction.Run"];
        double decode = times["aligned decoding alone (argmax, host copy of the ids)"], withTopK = times["aligned decoding + top-k + host copies per step"];
        foreach (var (k, v) in times) Console.WriteLine($"  {k,-66} {v,7:0.000} s  {v / whole,5:P0}");
        Console.WriteLine($"  {"=> top-k + host copies per step (difference)",-66} {withTopK - decode,7:0.000} s  {(withTopK - decode) / whole,5:P0}");
        double accounted = times["load both models"] + times["model identity (hash, cached)"] + times["load both tokenizers"] + withTopK + times["base teacher-forced forward"]
                           + times["shard assembling + writing (F16 hidden, top-k ids + logits)"];
        Console.WriteLine($"  {"=> rest (encoding prompts, manifest, checks, lists)",-66} {whole - accounted,7:0.000} s  {(whole - accounted) / whole,5:P0}");
    }

    /// <summary>What extraction's observer does each step: top-k of [n, vocab] as F32, both copied to the host as arrays.</summary>
    sealed class TopKCopy(int k, int vocab) : IGenerationObserver
    {
        public readonly List<float[]> Values = [];
        public readonly List<int[]> Ids = [];
        public unsafe void OnStep(IReadOnlyList<int> rows, Tensor logits, IReadOnlyList<long> chosen)
        {
            // the host top-k extraction runs on the CPU (TopK.Row), row by row, into arrays kept per row
            using var f = logits.narrow(1, 0, vocab).to_type(ScalarType.Float32).contiguous();
            float* p = (float*)SkinnyLinear.Data(f);
            for (int i = 0; i < rows.Count; i++)
            {
                var v = new float[k];
                var ix = new int[k];
                TopK.Row(new ReadOnlySpan<float>(p + (long)i * vocab, vocab), v, ix);
                Values.Add(v);
                Ids.Add(ix);
            }
        }
    }
}

/// <summary>
/// Wall and CPU time from the first generation step's token to the <paramref name="steps"/>-th's: decoding alone,
/// without the prefill (CPU time is read at those two steps only: reading it costs tens of µs).
/// </summary>
sealed class StepClock(int steps) : IGenerationObserver
{
    int seen;
    long first, last;
    double cpuFirst, cpuLast;
    public double Seconds => Stopwatch.GetElapsedTime(first, last).TotalSeconds;
    public double CpuSeconds => cpuLast - cpuFirst;
    public void OnStep(IReadOnlyList<int> rows, Tensor logits, IReadOnlyList<long> chosen)
    {
        long now = Stopwatch.GetTimestamp();
        if (++seen == 1) { first = now; cpuFirst = Measure.CpuSeconds(); }
        else if (seen == steps) { last = now; cpuLast = Measure.CpuSeconds(); }
        else if (seen > steps) throw new InvalidOperationException($"more than {steps} steps");
    }
}
