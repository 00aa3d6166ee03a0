using System.Diagnostics;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// Foundation figures for a random Llama-family model of about 40M parameters (hidden 512, 8 layers,
/// vocab 32000): prefill throughput and its fraction of the matmul peak, KV-cached decoding at batch 1
/// and 8 and contexts 64 and 512, and peak memory while loading against the weights' size.
/// </summary>
internal static class FoundationBench
{
    public static ModelConfig Config40M() =>
        ModelConfig.Llama(vocabSize: 32000, hidden: 512, layers: 8, heads: 8, kvHeads: 8, intermediate: 1536, maxPositions: 2048);

    /// <summary>Forward FLOPs of <paramref name="tokens"/> tokens at context length up to <paramref name="ctx"/> (matmuls only).</summary>
    public static double ForwardFlops(ModelConfig c, long tokens, double meanContext, bool lmHeadEveryToken)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim;
        double perLayer = 2.0 * (h * q + 2 * h * kv + q * h + 3 * h * c.IntermediateSize) + 4.0 * meanContext * q;
        return tokens * (c.NumLayers * perLayer + (lmHeadEveryToken ? 2.0 * h * c.VocabSize : 0));
    }

    public static void Run(bool quick)
    {
        var peak = Measure.MatmulPeakGflops();
        var c = Config40M();
        Console.WriteLine($"\n== foundation: random Llama, {c.ParameterCount() / 1e6:0.0}M parameters (hidden 512, 8 layers, vocab 32000), F32");
        Console.WriteLine($"F32 matmul peak (2048^3, best of 5): {peak:0.0} GFLOP/s");
        using var model = CausalLM.Create(c, seed: 1);
        using var noGrad = no_grad();

        foreach (var (b, t) in new[] { (1, 512), (4, 256) })
        {
            using var ids = randint(0, c.VocabSize, [b, t]);
            double s = Measure.Seconds(() => { using var scope = NewDisposeScope(); model.Logits(model.Forward(ids).select(1, -1)); }, reps: quick ? 1 : 3);
            double flops = ForwardFlops(c, (long)b * t, (t + 1) / 2.0, false) + 2.0 * b * c.HiddenSize * c.VocabSize;
            Console.WriteLine($"prefill batch {b} x {t} tokens: {b * t / s:0} tokens/s, {flops / s / 1e9:0.0} GFLOP/s = {flops / s / 1e9 / peak:P0} of peak");
        }

        foreach (var batch in new[] { 1, 8 })
            foreach (var ctx in new[] { 64, 512 })
            {
                int steps = quick ? 8 : 32;
                using var cache = model.NewCache(batch, ctx + steps + 1);
                using var prompt = randint(0, c.VocabSize, [batch, ctx]);
                using (var scope = NewDisposeScope()) model.Forward(prompt, null, cache);
                using var next = randint(0, c.VocabSize, [batch, 1]);
                var w = Stopwatch.StartNew();
                for (int i = 0; i < steps; i++)
                {
                    using var scope = NewDisposeScope();
                    model.Logits(model.Forward(next, null, cache));
                }
                double perStep = w.Elapsed.TotalSeconds / steps;
                double flops = ForwardFlops(c, batch, ctx + steps / 2.0, true);
                Console.WriteLine($"decode batch {batch}, context {ctx}: {batch / perStep:0} tokens/s ({perStep * 1000:0.0} ms/step, {flops / perStep / 1e9 / peak:P0} of peak)");
            }

        // Loading: a child process loads the saved model so its peak memory is its own.
        var dir = Path.Combine(Path.GetTempPath(), "superficial-bench-40m");
        model.SaveHf(dir);
        long bytes = Directory.GetFiles(dir, "*.safetensors").Sum(f => new FileInfo(f).Length);
        var exe = Environment.ProcessPath!;
        var self = typeof(FoundationBench).Assembly.Location;
        var psi = new ProcessStartInfo(exe, exe.EndsWith("dotnet") ? [self, "load-child", dir] : ["load-child", dir]) { RedirectStandardOutput = true };
        using var child = Process.Start(psi)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        Console.WriteLine($"load: weights {bytes / 1e6:0.0} MB on disk; {output.Trim()}");
        Directory.Delete(dir, true);
    }

    /// <summary>Runs in a child process: loads a model while sampling anonymous memory, prints peaks relative to start.</summary>
    public static void LoadChild(string dir)
    {
        using (var warm = zeros(1)) { } // load libtorch before the baseline
        long baseAnon = Measure.StatusKb("RssAnon"), peakAnon = baseAnon;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) { peakAnon = Math.Max(peakAnon, Measure.StatusKb("RssAnon")); Thread.Sleep(2); }
        });
        var w = Stopwatch.StartNew();
        using var m = CausalLM.Load(dir);
        double secs = w.Elapsed.TotalSeconds;
        stop.Cancel(); sampler.Wait();
        peakAnon = Math.Max(peakAnon, Measure.StatusKb("RssAnon"));
        Console.WriteLine($"loaded in {secs:0.00} s; anonymous memory grew by {(peakAnon - baseAnon) / 1024.0:0.0} MB at peak " +
                          $"(params {m.parameters().Sum(p => p.numel() * 4) / 1e6:0.0} MB F32); process peak RSS incl. mapped file pages {Measure.StatusKb("VmHWM") / 1024.0:0} MB");
    }
}
