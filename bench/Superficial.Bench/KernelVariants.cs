using Superficial.Tensors;
using System.Diagnostics;
using static TorchSharp.torch;

namespace Superficial.Bench;

// Kernel experiments behind the decode path's choices (closing note of issue 15); each prints CPU time per call, the
// variants interleaved, best of several runs (use --threads 1 on a shared machine).
//   gemv-variants: x W^T for skinny x (1, 8, 16 rows) as linear, (W x^T)^T or mm, on the bench model's weight shapes,
//     linear on W stored column-major (tried and withdrawn), and SkinnyLinear (what the models' Linear uses for F32 on the CPU)
//   fusion-variants: q/k/v (and gate/up) as separate matmuls or one over the concatenated weight
//   attention-variants: one decoding step's attention over strided cache views, fused kernel vs two bmm
//   head-variants: the [32000 x 512] LM head at 1-32 rows
internal static class GemvVariants
{
    public static void Run(string[] args)
    {
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        using var noGrad = no_grad();
        var shapes = new (long n, long k)[] { (512, 512), (1536, 512), (512, 1536), (32000, 512) };
        foreach (var b in new[] { 1, 2, 4, 8, 16, 64 })
            foreach (var (n, k) in shapes)
            {
                int copies = (int)Math.Max(1, 64_000_000 / (n * k * 4));   // > L3: weights stream from memory
                var ws = Enumerable.Range(0, copies).Select(_ => randn(n, k).to_type(dtype)).ToArray();
                var columnMajor = ws.Select(w => w.t().contiguous().t()).ToArray();   // the same W over a contiguous [k, n]
                var x = randn(b, k).to_type(dtype);
                var x3 = x.unsqueeze(1);
                var variants = new (string name, Func<int, Tensor> f)[]
                {
                    ("linear(x[b,1,k], W)", i => nn.functional.linear(x3, ws[i])),
                    ("linear(x[b,k], W)", i => nn.functional.linear(x, ws[i])),
                    ("W.matmul(x.t()).t()", i => ws[i].matmul(x.t()).t()),
                    ("mm(x, W.t())", i => x.mm(ws[i].t())),
                    ("linear(x, W col-major)", i => nn.functional.linear(x, columnMajor[i])),
                };
                if (b <= (dtype == ScalarType.Float32 ? SkinnyLinear.MaxRows : SkinnyLinear.MaxRowsBf16))
                    variants = [.. variants, ("SkinnyLinear", i => SkinnyLinear.TryForward(x, ws[i], null) ?? throw new InvalidOperationException("SkinnyLinear declined: it needs AVX2 and FMA, and SUPERFICIAL_LINEAR unset"))];
                // at one row, also W 8 bytes past a cache line, as a checkpoint mapped from a file whose header ends there
                var offLine = b == 1 ? ws.Select(w => empty(w.numel() + 32, dtype).narrow(0, 8 / (int)w.element_size(), w.numel()).view(w.shape).copy_(w)).ToArray() : [];
                if (b == 1) variants = [.. variants, ("SkinnyLinear, W off line", i => SkinnyLinear.TryForward(x, offLine[i], null)!)];
                var best = variants.Select(_ => double.MaxValue).ToArray();
                for (int r = 0; r < 15; r++)
                    for (int v = 0; v < variants.Length; v++)
                    {
                        double c0 = Measure.CpuSeconds();
                        int calls = Math.Max(copies, 8);
                        for (int i = 0; i < calls; i++) variants[v].f(i % copies).Dispose();
                        best[v] = Math.Min(best[v], (Measure.CpuSeconds() - c0) / calls);
                    }
                for (int v = 0; v < variants.Length; v++)
                    Console.WriteLine($"b={b,2} [{n}x{k}] {variants[v].name,-24} {best[v] * 1e6,8:0} us  {n * k * (dtype == ScalarType.Float32 ? 4 : 2) / best[v] / 1e9,6:0.0} GB/s  {2.0 * b * n * k / best[v] / 1e9,6:0.0} GFLOP/s");
                foreach (var t in ws.Concat(columnMajor).Concat(offLine)) t.Dispose();
            }
    }
}


/// <summary>
/// SkinnyLinear's 8-lane (AVX2) tiles against its 16-lane (AVX-512) tiles, interleaved in one process, on the bench
/// model's weight shapes at 1-64 rows: CPU µs per call, GB/s of weights and GFLOP/s, with the FMA peak of each width
/// measured beside them (2 x 8 and 2 x 16 lanes per cycle where the CPU has full-width units).
/// </summary>
internal static class LaneVariants
{
    public static void Run(string[] args)
    {
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        using var noGrad = no_grad();
        Console.WriteLine($"FMA peak, one thread: 8 lanes {FmaPeak.Gflops(false):0.0} GFLOP/s, 16 lanes {(System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? FmaPeak.Gflops(true) : 0):0.0} GFLOP/s");
        bool wide = SkinnyLinear.Wide;
        try
        {
            foreach (var b in new[] { 1, 4, 8, 16, 32, 64 })
                foreach (var (n, k) in new (long n, long k)[] { (512, 512), (1536, 512), (512, 1536), (32000, 512) })
                {
                    if (b > (dtype == ScalarType.Float32 ? SkinnyLinear.MaxRows : SkinnyLinear.MaxRowsBf16)) continue;
                    int copies = (int)Math.Max(1, 64_000_000 / (n * k * 4));   // > L3: weights stream from memory
                    var ws = Enumerable.Range(0, copies).Select(_ => randn(n, k).to_type(dtype)).ToArray();
                    var x = randn(b, k).to_type(dtype);
                    var best = new[] { double.MaxValue, double.MaxValue };
                    for (int r = 0; r < 15; r++)
                        for (int v = 0; v < 2; v++)
                        {
                            SkinnyLinear.Wide = v == 1;
                            double c0 = Measure.CpuSeconds();
                            int calls = Math.Max(copies, 8);
                            for (int i = 0; i < calls; i++) (SkinnyLinear.TryForward(x, ws[i % copies], null) ?? throw new InvalidOperationException("SkinnyLinear declined")).Dispose();
                            best[v] = Math.Min(best[v], (Measure.CpuSeconds() - c0) / calls);
                        }
                    for (int v = 0; v < 2; v++)
                        Console.WriteLine($"b={b,2} [{n}x{k}] {(v == 0 ? "8 lanes" : "16 lanes"),-9} {best[v] * 1e6,8:0} us  {n * k * (dtype == ScalarType.Float32 ? 4 : 2) / best[v] / 1e9,6:0.0} GB/s  {2.0 * b * n * k / best[v] / 1e9,6:0.0} GFLOP/s{(v == 1 ? $"  {best[0] / best[1]:0.00}x" : "")}");
                    foreach (var t in ws) t.Dispose();
                }
        }
        finally { SkinnyLinear.Wide = wide; }
    }
}

internal static class FusionVariants
{
    public static void Run(string[] args)
    {
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        using var noGrad = no_grad();
        const int layers = 16;   // 16 layers' worth: more than L3
        foreach (var b in new[] { 1, 8, 16 })
            foreach (var (name, n, parts) in new[] { ("q,k,v", 512L, 3), ("gate,up", 1536L, 2) })
            {
                var sep = Enumerable.Range(0, layers).Select(_ => Enumerable.Range(0, parts).Select(_ => randn(n, 512).to_type(dtype)).ToArray()).ToArray();
                var fused = sep.Select(ws => cat(ws, 0)).ToArray();
                var x = randn(b, 1, 512).to_type(dtype);
                double bestSep = double.MaxValue, bestFused = double.MaxValue;
                for (int r = 0; r < 15; r++)
                {
                    double c0 = Measure.CpuSeconds();
                    for (int l = 0; l < layers; l++) foreach (var w in sep[l]) nn.functional.linear(x, w).Dispose();
                    bestSep = Math.Min(bestSep, (Measure.CpuSeconds() - c0) / layers);
                    c0 = Measure.CpuSeconds();
                    for (int l = 0; l < layers; l++)
                    {
                        using var y = nn.functional.linear(x, fused[l]);
                        for (int p = 0; p < parts; p++) y.narrow(-1, p * n, n).Dispose();
                    }
                    bestFused = Math.Min(bestFused, (Measure.CpuSeconds() - c0) / layers);
                }
                Console.WriteLine($"b={b,2} {name,-8} separate {bestSep * 1e6,7:0} us, fused {bestFused * 1e6,7:0} us per layer: fused/separate {bestFused / bestSep:0.00}");
            }
    }
}


internal static class AttentionVariants
{
    public static void Run(string[] args)
    {
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        using var noGrad = no_grad();
        foreach (var (b, ctx) in new[] { (1, 64), (1, 448), (8, 96), (16, 96), (8, 448) })
        {
            var q = randn(b, 8, 1, 64).to_type(dtype);
            var layers = Enumerable.Range(0, 8).Select(_ => (randn(b, 8, ctx + 40, 64).to_type(dtype).narrow(2, 0, ctx), randn(b, 8, ctx + 40, 64).to_type(dtype).narrow(2, 0, ctx))).ToArray();
            var mask = ones(b, 1, 1, ctx, ScalarType.Bool);
            mask[0, 0, 0, 0] = false;
            double bf = double.MaxValue, bm = double.MaxValue;
            for (int r = 0; r < 20; r++)
            {
                double c0 = Measure.CpuSeconds();
                foreach (var (k, v) in layers) nn.functional.scaled_dot_product_attention(q, k, v, mask).Dispose();
                bf = Math.Min(bf, Measure.CpuSeconds() - c0);
                c0 = Measure.CpuSeconds();
                foreach (var (k, v) in layers) Superficial.Models.CausalLMAttention.Attend(q, k, v, mask).Dispose();
                bm = Math.Min(bm, Measure.CpuSeconds() - c0);
            }
            using var f = nn.functional.scaled_dot_product_attention(q, layers[0].Item1, layers[0].Item2, mask);
            using var m = Superficial.Models.CausalLMAttention.Attend(q, layers[0].Item1, layers[0].Item2, mask);
            Console.WriteLine($"b={b,2} ctx {ctx}: 8 layers fused kernel {bf * 1e3:0.000} ms, two bmm {bm * 1e3:0.000} ms, ratio {bm / bf:0.00}; max diff {(f - m).abs().max().to_type(ScalarType.Float32).item<float>():E1}");
        }
        if (dtype == ScalarType.Float32 && System.Runtime.Intrinsics.X86.Fma.IsSupported) FusedStepFromMemory();
    }

    /// <summary>
    /// The fused decoding step's attention (LlamaDecodeStep.Attend) over one sequence's cache of the bench model (8
    /// layers x 8 heads of 64), read from memory: five copies of the cache in turn, so each call finds it cold, as a
    /// decoding step does after streaming the weights. GB/s of keys and values read.
    /// </summary>
    static unsafe void FusedStepFromMemory()
    {
        const int hd = 64, heads = 64;
        Console.WriteLine("fused step's attention, one sequence, 64 heads of 64, keys and values from memory (5 copies in turn), best of 20:");
        foreach (var s in new[] { 96, 480, 992 })
        {
            int cap = s + 32;
            var copies = Enumerable.Range(0, 5).Select(_ => (randn(heads, cap, hd), randn(heads, cap, hd))).ToArray();
            using var q = randn(heads, hd);
            using var mask = ones(s, ScalarType.Bool);
            var scores = new float[s];
            var o = new float[heads * hd];
            double best = double.MaxValue;
            for (int r = 0; r < 20; r++)
            {
                var (k, v) = copies[r % copies.Length];
                byte* kp = Superficial.Tensors.SkinnyLinear.Data(k), vp = Superficial.Tensors.SkinnyLinear.Data(v), mp = Superficial.Tensors.SkinnyLinear.Data(mask);
                float* qp = (float*)Superficial.Tensors.SkinnyLinear.Data(q);
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                fixed (float* sc = scores) fixed (float* op = o)
                    for (int h = 0; h < heads; h++)
                        Superficial.Models.LlamaDecodeStep.Attend<Superficial.Models.LlamaDecodeStep.F32>(qp + h * hd, kp + (long)h * cap * hd * 4,
                            vp + (long)h * cap * hd * 4, mp, s, hd, 0.125f, sc, op + h * hd);
                best = Math.Min(best, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            foreach (var (k, v) in copies) { k.Dispose(); v.Dispose(); }
            Console.WriteLine($"  context {s}: {best * 1e3:0.000} ms, {2.0 * heads * s * hd * 4 / best / 1e9:0.0} GB/s");
        }
    }
}


internal static class HeadVariants
{
    public static void Run(string[] args)
    {
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        using var noGrad = no_grad();
        var ws = Enumerable.Range(0, 3).Select(_ => randn(32000, 512).to_type(dtype)).ToArray();
        foreach (var b in new[] { 1, 4, 8, 16, 32 })
        {
            var x = randn(b, 512).to_type(dtype);
            var variants = new (string, Func<Tensor, Tensor>)[]
            {
                ("linear", w => nn.functional.linear(x, w)),
                ("W.mm(x.t()).t()", w => w.mm(x.t()).t()),
                ("W.mm(x.t()).t().contiguous()", w => w.mm(x.t()).t().contiguous()),
                ("8 chunks of 4000 rows", w => cat(w.split(4000, 0).Select(c => nn.functional.linear(x, c)).ToArray(), 1)),
            };
            var best = variants.Select(_ => double.MaxValue).ToArray();
            for (int r = 0; r < 12; r++)
                for (int v = 0; v < variants.Length; v++)
                {
                    double c0 = Measure.CpuSeconds();
                    foreach (var w in ws) variants[v].Item2(w).Dispose();
                    best[v] = Math.Min(best[v], (Measure.CpuSeconds() - c0) / ws.Length);
                }
            Console.WriteLine($"b={b,2}: " + string.Join(", ", variants.Select((v, i) => $"{v.Item1} {best[i] * 1e3:0.00} ms")));
        }
    }
}

/// <summary>
/// Whole decoding steps of the bench model (random Llama 43.7M, F32, tied head) with its weights stored three ways:
/// row-major as a checkpoint stores them; the linear layers column-major (W [out, in] as a view of a contiguous
/// [in, out]); and the head column-major too (computed as x Wᵀ, since (W xᵀ)ᵀ is slow on that layout). Wall ms per
/// step at context 64, best of 5, the variants interleaved. Behind the choice to keep the stored order (closing note of
/// issue 15): column-major is 1.4x faster at batch 1 but 3-8 % slower at 4-16 rows, and its head 2x slower at 2-4 rows
/// with two threads.
///   dotnet run -c Release --project bench/Superficial.Bench -- layout-variants [--threads N]
/// </summary>
internal static class LayoutVariants
{
    const int Steps = 24;

    public static void Run(string[] args)
    {
        var c = FoundationBench.Config40M() with { BosTokenId = 1, EosTokenIds = [2] };
        using var row = Superficial.Models.CausalLM.Create(c, 1, ScalarType.Float32);
        using var layers = Superficial.Models.CausalLM.Create(c, 1, ScalarType.Float32);
        using var all = Superficial.Models.CausalLM.Create(c, 1, ScalarType.Float32);
        using var noGrad = no_grad();
        foreach (var m in new[] { layers, all })
            foreach (var module in m.modules().OfType<Superficial.Models.Linear>())
                ColumnMajor(module.weight);
        ColumnMajor(all.LmHeadWeight);
        var variants = new (string name, Superficial.Models.CausalLM model, bool linearHead)[]
            { ("row-major", row, false), ("layers column-major", layers, false), ("all column-major", all, true) };
        Console.WriteLine($"\n== layout variants: random Llama {c.ParameterCount() / 1e6:0.0}M, F32, wall ms per decoding step at context 64; load {File.ReadAllText("/proc/loadavg")[..14]}");
        Console.WriteLine("| batch | " + string.Join(" | ", variants.Select(v => v.name)) + " |");
        Console.WriteLine("| --- | --- | --- | --- |");
        foreach (var b in new[] { 1, 2, 4, 8, 16 })
        {
            var ids = randint(3, c.VocabSize, [b, 64]);
            var best = variants.Select(_ => double.MaxValue).ToArray();
            for (int r = 0; r < 5; r++)
                for (int v = 0; v < variants.Length; v++)
                    best[v] = Math.Min(best[v], StepMs(variants[v].model, ids, variants[v].linearHead));
            Console.WriteLine($"| {b} | " + string.Join(" | ", best.Select(x => $"{x:0.00} ({best[0] / x:0.00}x)")) + " |");
        }
    }

    static void ColumnMajor(Tensor w)
    {
        using var t = w.t().contiguous().t();
        w.set_(t);
    }

    static double StepMs(Superficial.Models.CausalLM model, Tensor ids, bool linearHead)
    {
        using var scope = NewDisposeScope();
        long b = ids.shape[0], ctx = ids.shape[1];
        using var cache = model.NewCache((int)b, (int)ctx + Steps + 1);
        var mask = ones([b, ctx + Steps + 1], ScalarType.Int64);
        model.Forward(ids, null, cache, mask.narrow(1, 0, ctx));
        var next = ids.narrow(1, ctx - 1, 1);
        var w = Stopwatch.StartNew();
        for (int s = 0; s < Steps; s++)
        {
            using var stepScope = NewDisposeScope();
            int past = cache.Length;
            var hidden = model.Forward(next, full([b, 1], (long)past, ScalarType.Int64), cache, mask.narrow(1, 0, past + 1)).squeeze(1);
            var logits = linearHead ? nn.functional.linear(hidden, model.LmHeadWeight) : model.HeadLogits(hidden);
            next = logits.argmax(-1).unsqueeze(1).MoveToOuterDisposeScope();
        }
        return w.Elapsed.TotalMilliseconds / Steps;
    }
}
