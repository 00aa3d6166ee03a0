using Superficial.Tensors;
using System.Diagnostics;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// Where a decoding step of the Llama forward goes (the roofline bench's pair: hidden 512, 8 layers, vocab 32000):
/// the whole step as TextGenerator runs it (forward with the preallocated cache, LM head on the last position,
/// argmax, the chosen ids copied to the host), with the fused step (<see cref="LlamaDecodeStep"/>) and with the module
/// path it replaces, against each part of the module path run alone on the same shapes, the same number of
/// times: the weight matmuls alone (the floor a step cannot go below), positions and masks (Prepare), the rotary
/// tables, and per layer the norms, rotary application, cache writes, attention and the element-wise rest.
/// Each figure is the best of 3 runs of 32 steps, in CPU ms per step of this process (with --threads 1, the work done).
/// </summary>
internal static class DecodeProfile
{
    const int Steps = 32;

    public static void Run(string[] args)
    {
        var dtype = args.Contains("--bf16") ? ScalarType.BFloat16 : ScalarType.Float32;
        var c = FoundationBench.Config40M() with { BosTokenId = 1, EosTokenIds = [2] };
        using var model = CausalLM.Create(c, 1, dtype);
        using var noGrad = no_grad();
        Console.WriteLine($"\n== decode profile: random Llama {c.ParameterCount() / 1e6:0.0}M, {(dtype == ScalarType.BFloat16 ? "BF16" : "F32")}, " +
                          $"CPU ms per decoding step (best of 3 x {Steps} steps; use --threads 1); load {File.ReadAllText("/proc/loadavg")[..14]}");
        Console.WriteLine("| batch, context | whole step | whole step, module path | weight matmuls alone | Prepare (positions, masks) | rotary tables | norms (2/layer + final) | rotary apply (q, k) | cache append | attention | residual + MLP act | sum of parts |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        // --rows 1x64,8x448: which (batch, context) rows (default: batch 1 and 8 at contexts 64 and 448)
        int at = Array.IndexOf(args, "--rows");
        var rows = at >= 0 ? args[at + 1].Split(',').Select(r => r.Split('x')).Select(r => (int.Parse(r[0]), int.Parse(r[1]))).ToArray()
                           : [(1, 64), (1, 448), (8, 64), (8, 448)];
        foreach (var (batch, ctx) in rows) Row(model, c, dtype, batch, ctx);
    }

    /// <summary>Milliseconds of this process's CPU time (with --threads 1, the work done; steadier than wall time on a shared machine).</summary>
    static double CpuMs() => Measure.CpuSeconds() * 1000;

    static double Best(Action step)
    {
        step();
        double best = double.MaxValue;
        for (int r = 0; r < 3; r++)
        {
            double c0 = CpuMs();
            for (int s = 0; s < Steps; s++) step();
            best = Math.Min(best, (CpuMs() - c0) / Steps);
        }
        return best;
    }

    static void Row(CausalLM model, ModelConfig c, ScalarType dtype, int b, int ctx)
    {
        int h = c.HiddenSize, L = c.NumLayers, hd = c.HeadDim, H = c.NumHeads, kv = c.NumKvHeads;
        var ids = randint(3, c.VocabSize, [b, ctx]);
        var parts = new List<double>();

        // the whole step: prefill outside the timing, then Steps decoding steps on a fresh cache each run; with the
        // fused step (LlamaDecodeStep, the default where it applies) and with the module path it replaces
        double Whole()
        {
            double best = double.MaxValue;
            for (int r = 0; r < 4; r++)
            {
                using var scope = NewDisposeScope();
                using var cache = model.NewCache(b, ctx + Steps + 1);
                var mask = ones([b, ctx + Steps + 1], ScalarType.Int64);
                model.Forward(ids, null, cache, mask.narrow(1, 0, ctx));
                var next = ids.narrow(1, ctx - 1, 1);
                double c0 = CpuMs();
                for (int s = 0; s < Steps; s++)
                {
                    using var stepScope = NewDisposeScope();
                    int past = cache.Length;
                    var pos = full([b, 1], (long)past, ScalarType.Int64);
                    var hidden = model.Forward(next, pos, cache, mask.narrow(1, 0, past + 1));
                    var chosen = model.HeadLogits(hidden.reshape(b, -1)).argmax(-1);
                    chosen.cpu().data<long>().ToArray();
                    next = chosen.unsqueeze(1).MoveToOuterDisposeScope();
                }
                if (r > 0) best = Math.Min(best, (CpuMs() - c0) / Steps);
            }
            return best;
        }
        double whole = Whole();
        LlamaDecodeStep.Enabled = false;
        double wholeModules;
        try { wholeModules = Whole(); }
        finally { LlamaDecodeStep.Enabled = true; }

        // weight matmuls alone: every 2-D parameter but the embedding, on inputs of the step's shape, as the model's
        // Linear computes them (SkinnyLinear where it applies), and the LM head as the step does (CausalLM.HeadLogits)
        var weights = model.named_parameters().Where(p => p.parameter.dim() == 2 && !p.name.Contains("embed_tokens") && p.name != "lm_head.weight")
            .Select(p => (Tensor)p.parameter).ToList();
        var inputs = weights.Select(wt => randn(b, 1, wt.shape[1]).to_type(dtype)).ToList();
        var last = randn(b, h).to_type(dtype);
        double matmuls = Best(() =>
        {
            using var s = NewDisposeScope();
            for (int i = 0; i < weights.Count; i++) _ = SkinnyLinear.TryForward(inputs[i], weights[i], null) ?? nn.functional.linear(inputs[i], weights[i]);
            model.HeadLogits(last);
        });

        using var big = model.NewCache(b, ctx + 4 * Steps + 8);
        var bigMask = ones([b, ctx + 4 * Steps + 8], ScalarType.Int64);
        model.Forward(ids, null, big, bigMask.narrow(1, 0, ctx));
        var one = ids.narrow(1, 0, 1);
        var posT = full([b, 1], (long)ctx, ScalarType.Int64);
        var m = bigMask.narrow(1, 0, ctx + 1);
        double prepare = Best(() => { using var s = NewDisposeScope(); model.Prepare(one, posT, big, m); });
        using var rope = new Rope(c);
        double tables = Best(() => { using var s = NewDisposeScope(); rope.Tables(posT, dtype, ctx + 1); });
        var x = randn(b, 1, h).to_type(dtype);
        var norm = new RmsNorm(h, c.NormEps, dtype);
        norm.weight.fill_(1);
        double norms = Best(() => { using var s = NewDisposeScope(); for (int i = 0; i < 2 * L + 1; i++) norm.forward(x); });
        var (cos, sin) = rope.Tables(posT, dtype, ctx + 1);
        var q = randn(b, 1, H * hd).to_type(dtype);
        var k = randn(b, 1, kv * hd).to_type(dtype);
        double ropeApply = Best(() =>
        {
            using var s = NewDisposeScope();
            for (int i = 0; i < L; i++)
            {
                Rope.Apply(q.reshape(b, 1, H, hd).transpose(1, 2), cos, sin);
                Rope.Apply(k.reshape(b, 1, kv, hd).transpose(1, 2), cos, sin);
            }
        });
        // views of a preallocated buffer, as the cache returns them (strided when the capacity exceeds the length)
        var keys = randn(b, kv, ctx + Steps + 1, hd).to_type(dtype).narrow(2, 0, ctx + 1);
        var vals = randn(b, kv, ctx + Steps + 1, hd).to_type(dtype).narrow(2, 0, ctx + 1);
        var kNew = randn(b, kv, 1, hd).to_type(dtype);
        double append = Best(() =>
        {
            using var s = NewDisposeScope();
            for (int i = 0; i < L; i++) { keys.narrow(2, ctx, 1).copy_(kNew); vals.narrow(2, ctx, 1).copy_(kNew); keys.narrow(2, 0, ctx + 1); vals.narrow(2, 0, ctx + 1); }
        });
        var (_, masks) = model.Prepare(one, posT, big, m);
        var qh = randn(b, H, 1, hd).to_type(dtype);
        double attention = Best(() => { using var s = NewDisposeScope(); for (int i = 0; i < L; i++) CausalLMAttention.Attend(qh, keys, vals, masks.For(i)); });
        var gate = randn(b, 1, c.IntermediateSize).to_type(dtype);
        double rest = Best(() =>
        {
            using var s = NewDisposeScope();
            for (int i = 0; i < L; i++) { var a = nn.functional.silu(gate) * gate; var r1 = x + x; var r2 = r1 + x; }
        });
        parts.AddRange([matmuls, prepare, tables, norms, ropeApply, append, attention, rest]);
        Console.WriteLine($"| {b}, {ctx}-{ctx + Steps} | {whole:0.00} | {wholeModules:0.00} | " + string.Join(" | ", parts.Select(p => $"{p:0.00}")) + $" | {parts.Sum():0.00} |");
    }
}
