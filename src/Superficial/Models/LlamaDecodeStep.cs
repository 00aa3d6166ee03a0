using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// One decoding step of the Llama family (one new token per sequence, at most <see cref="SkinnyLinear.MaxRows"/>
/// sequences, F32, on a CPU with AVX2) computed layer after layer on raw buffers, with no tensor operation inside the
/// layers: RMSNorm, the q/k/v projections (<see cref="SkinnyLinear"/>), rotary embeddings, the cache write, attention
/// over the cached keys and values, the output projection and residual, RMSNorm, the SwiGLU MLP and its residual.
/// <para>
/// Why: the module path spends about 60 small libtorch operations per layer on a decoding step (each about 1.5-2 µs
/// through TorchSharp, plus its allocation and disposal), a third of the step at batch 1 on the roofline bench's
/// model, where the weights' bytes, the step's real limit, take the rest (bench: <c>decode-profile</c>).
/// </para>
/// <para>
/// The arithmetic is the module path's, in F32: rotary embeddings, residual sums and the norms' scaling are the same
/// operations in the same order (bit for bit); the norms' mean of squares, the attention's dot products and softmax,
/// and SiLU's exponential are summed or computed in another order or by another routine, so the hidden state agrees
/// with the module path to about 1e-6 relative (tested), not bit for bit. Every row is computed alone, in one fixed
/// order, so a sequence's step does not depend on the rows decoded beside it nor on the thread split, as with
/// <see cref="SkinnyLinear"/>. Configurations outside the plain Llama block (post or sandwich norms, q/k norms,
/// soft-capping, a query scale, fused projections, GeGLU, Gemma's norms and embedding scale, layers split across
/// devices) and everything else (prefill, BF16, GPUs, gradients) take the module path: <see cref="Applies"/> is false.
/// SUPERFICIAL_DECODE_STEP=modules turns it off (for comparisons); SUPERFICIAL_LINEAR=libtorch turns it off with the kernel.
/// </para>
/// </summary>
internal static unsafe class LlamaDecodeStep
{
    /// <summary>Off: every step takes the module path (tests and benchmarks compare the two). SUPERFICIAL_DECODE_STEP=modules turns it off.</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SUPERFICIAL_DECODE_STEP") != "modules";

    /// <summary>Whether the model's configuration is one this step computes (checked once per model).</summary>
    public static bool Supports(ModelConfig c) =>
        c.NormPlacement == NormPlacement.Pre && !c.QkNorm && c.AttnLogitSoftcap is null && c.QueryPreAttnScalar is null &&
        !c.FusedProjections && c.HiddenAct == "silu" && !c.NormPlusOne && !c.ScaleEmbeddings &&
        c.HeadDim % 8 == 0 && c.HiddenSize % 8 == 0 && c.IntermediateSize % 8 == 0 && c.NumHeads % c.NumKvHeads == 0;

    /// <summary>Whether this call can take the step: one new token per row, F32 on the CPU, no gradients, the kernel on.</summary>
    public static bool Applies(CausalLM model, Tensor ids, KvCache? cache, bool split) =>
        cache is not null && !split && Enabled && SkinnyLinear.Enabled && model.DType == ScalarType.Float32 &&
        model.Device.type == TorchSharp.DeviceType.CPU && !is_grad_enabled() &&
        ids.dim() == 2 && ids.size(1) == 1 && ids.size(0) <= SkinnyLinear.MaxRows && ids.device_type == TorchSharp.DeviceType.CPU;

    /// <summary>The per-layer weights the step reads, as the module tree holds them.</summary>
    internal readonly record struct LayerWeights(
        Tensor InputNorm, Tensor Q, Tensor? QBias, Tensor K, Tensor? KBias, Tensor V, Tensor? VBias, Tensor O, Tensor? OBias,
        Tensor PostNorm, Tensor Gate, Tensor? GateBias, Tensor Up, Tensor? UpBias, Tensor Down, Tensor? DownBias);

    /// <summary>
    /// The final hidden states [B, 1, hidden] (after the final norm) for <paramref name="ids"/> [B, 1] at
    /// <paramref name="positions"/> [B, 1], appending each layer's key and value to <paramref name="cache"/>
    /// (whose <see cref="KvCache.Advance"/> the caller makes). <paramref name="masks"/> are <see cref="CausalLM.Prepare"/>'s.
    /// </summary>
    public static Tensor Run(ModelConfig c, Tensor embedding, IReadOnlyList<LayerWeights> layers, Tensor finalNorm, Rope rope,
                             Tensor ids, Tensor positions, AttentionMasks masks, KvCache cache)
    {
        int b = (int)ids.size(0), h = c.HiddenSize, hd = c.HeadDim, heads = c.NumHeads, kvh = c.NumKvHeads, inter = c.IntermediateSize;
        int past = cache.Length, s = past + 1;
        cache.Reserve(s);
        using var scope = NewDisposeScope();
        var (cosT, sinT) = rope.Tables(positions, ScalarType.Float32, s);   // [B, 1, 1, hd]
        cosT = cosT.contiguous(); sinT = sinT.contiguous();
        var idc = ids.contiguous();
        var output = empty([b, 1, h], ScalarType.Float32);

        long qn = (long)heads * hd, kn = (long)kvh * hd;
        // one scratch block: x, xn (hidden), q and the attention output (heads x hd), k and v (kv heads x hd), gate and up (inter), scores
        long floats = 2L * b * h + 2L * b * qn + 2L * b * kn + 2L * b * inter + s;
        float* x = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
        try
        {
            float* xn = x + b * h, q = xn + b * h, att = q + b * qn, k = att + b * qn, v = k + b * kn, gate = v + b * kn, up = gate + (long)b * inter, scores = up + (long)b * inter;
            float* cos = F(cosT), sin = F(sinT);
            long* idp = (long*)SkinnyLinear.Data(idc);
            float* emb = F(embedding);
            for (int r = 0; r < b; r++)
            {
                long id = idp[r];
                if ((ulong)id >= (ulong)c.VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary (0..{c.VocabSize - 1}).");
                Buffer.MemoryCopy(emb + id * h, x + (long)r * h, h * 4L, h * 4L);
            }
            float eps = (float)c.NormEps, scale = (float)(1 / Math.Sqrt(hd));
            int group = heads / kvh;
            for (int l = 0; l < layers.Count; l++)
            {
                var w = layers[l];
                for (int r = 0; r < b; r++) RmsNorm(x + (long)r * h, F(w.InputNorm), xn + (long)r * h, h, eps);
                SkinnyLinear.Multiply(xn, b, Data(w.Q), F(w.QBias), q, qn, h);
                SkinnyLinear.Multiply(xn, b, Data(w.K), F(w.KBias), k, kn, h);
                SkinnyLinear.Multiply(xn, b, Data(w.V), F(w.VBias), v, kn, h);
                var (keys, values) = cache.Layer(l);
                float* kc = F(keys), vc = F(values);
                long cap = cache.Capacity;
                var mask = masks.For(l);
                if (!mask.is_contiguous()) mask = mask.contiguous();
                byte* m = SkinnyLinear.Data(mask);   // [B, 1, 1, S] bool
                for (int r = 0; r < b; r++)
                {
                    float* rc = cos + (long)r * hd, rs = sin + (long)r * hd;
                    for (int i = 0; i < heads; i++) Rotate(q + r * qn + (long)i * hd, rc, rs, hd);
                    for (int j = 0; j < kvh; j++)
                    {
                        float* kr = k + r * kn + (long)j * hd;
                        Rotate(kr, rc, rs, hd);
                        long at = (((long)r * kvh + j) * cap + past) * hd;   // cache [B, kv heads, capacity, hd]
                        Buffer.MemoryCopy(kr, kc + at, hd * 4L, hd * 4L);
                        Buffer.MemoryCopy(v + r * kn + (long)j * hd, vc + at, hd * 4L, hd * 4L);
                    }
                    for (int i = 0; i < heads; i++)
                    {
                        long kv0 = ((long)r * kvh + i / group) * cap * hd;
                        Attend(q + r * qn + (long)i * hd, kc + kv0, vc + kv0, m + (long)r * s, s, hd, scale, scores, att + r * qn + (long)i * hd);
                    }
                }
                SkinnyLinear.Multiply(att, b, Data(w.O), F(w.OBias), xn, h, qn);
                AddInPlace(x, xn, (long)b * h);
                for (int r = 0; r < b; r++) RmsNorm(x + (long)r * h, F(w.PostNorm), xn + (long)r * h, h, eps);
                SkinnyLinear.Multiply(xn, b, Data(w.Gate), F(w.GateBias), gate, inter, h);
                SkinnyLinear.Multiply(xn, b, Data(w.Up), F(w.UpBias), up, inter, h);
                SiluTimes(gate, up, (long)b * inter);
                SkinnyLinear.Multiply(gate, b, Data(w.Down), F(w.DownBias), xn, h, inter);
                AddInPlace(x, xn, (long)b * h);
            }
            float* o = F(output);
            for (int r = 0; r < b; r++) RmsNorm(x + (long)r * h, F(finalNorm), o + (long)r * h, h, eps);
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(x);
        }
        GC.KeepAlive(embedding); GC.KeepAlive(layers); GC.KeepAlive(finalNorm);
        return output.MoveToOuterDisposeScope();
    }

    static byte* Data(Tensor t) => SkinnyLinear.Data(t);
    static float* F(Tensor? t) => t is null ? null : (float*)SkinnyLinear.Data(t);

    /// <summary>
    /// y = w * (x / sqrt(mean(x²) + eps)), as <see cref="Models.RmsNorm"/> computes it in F32: the scaling is the same two
    /// products, the mean of squares is summed in 8 lanes (libtorch sums in another order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RmsNorm(float* x, float* w, float* y, int n, float eps)
    {
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < n; i += 8)
        {
            var v = Avx.LoadVector256(x + i);
            acc = Avx.Add(acc, Avx.Multiply(v, v));
        }
        float r = 1f / MathF.Sqrt(Vector256.Sum(acc) / n + eps);
        var rv = Vector256.Create(r);
        for (int i = 0; i < n; i += 8)
            Avx.Store(y + i, Avx.Multiply(Avx.LoadVector256(w + i), Avx.Multiply(Avx.LoadVector256(x + i), rv)));
    }

    /// <summary>HF's rotate-half rotary embedding in place: x*cos + rotate_half(x)*sin, each product and the sum rounded as libtorch's element-wise ops round them.</summary>
    static void Rotate(float* x, float* cos, float* sin, int hd)
    {
        int half = hd / 2;
        for (int j = 0; j < half; j++)
        {
            float a = x[j], bb = x[j + half];
            x[j] = a * cos[j] + -bb * sin[j];
            x[j + half] = bb * cos[j + half] + a * sin[j + half];
        }
    }

    /// <summary>
    /// softmax(q·kₛ × scale over the keys the mask allows) · v for one query head: <paramref name="keys"/> and
    /// <paramref name="values"/> point at the head's first cached position (rows of <paramref name="hd"/> floats).
    /// Scores are taken 4 keys at a time (one 8-lane accumulator each, lanes summed in a fixed order), the exponentials
    /// 8 at a time, and the weighted sum of values 32 dimensions at a time over all positions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Attend(float* q, float* keys, float* values, byte* allowed, int s, int hd, float scale, float* scores, float* o)
    {
        int t = 0;
        var sc4 = Vector128.Create(scale);
        for (; t + 4 <= s; t += 4)
        {
            float* k0 = keys + (long)t * hd, k1 = k0 + hd, k2 = k1 + hd, k3 = k2 + hd;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int j = 0; j < hd; j += 8)
            {
                var qv = Avx.LoadVector256(q + j);
                a0 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k0 + j), a0);
                a1 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k1 + j), a1);
                a2 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k2 + j), a2);
                a3 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k3 + j), a3);
            }
            var h = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
            Sse.Store(scores + t, Sse.Multiply(Sse.Add(h.GetLower(), h.GetUpper()), sc4));
        }
        for (; t < s; t++)
        {
            float* kt = keys + (long)t * hd;
            var a = Vector256<float>.Zero;
            for (int j = 0; j < hd; j += 8) a = Fma.MultiplyAdd(Avx.LoadVector256(q + j), Avx.LoadVector256(kt + j), a);
            scores[t] = Vector256.Sum(a) * scale;
        }
        float max = float.NegativeInfinity;
        for (t = 0; t < s; t++)
            if (allowed[t] == 0) scores[t] = float.NegativeInfinity;
            else if (scores[t] > max) max = scores[t];
        // exp(score - max), 0 where masked (exp(-inf) = 0)
        var mv = Vector256.Create(max);
        for (t = 0; t + 8 <= s; t += 8) Avx.Store(scores + t, Vector256.Exp(Avx.Subtract(Avx.LoadVector256(scores + t), mv)));
        for (; t < s; t++) scores[t] = MathF.Exp(scores[t] - max);
        float sum = 0;
        for (t = 0; t < s; t++) sum += scores[t];
        var inv = Vector256.Create(1f / sum);
        int d = 0;
        for (; d + 32 <= hd; d += 32)
        {
            Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default;
            float* vt = values + d;
            for (t = 0; t < s; t++, vt += hd)
            {
                var p = Vector256.Create(scores[t]);
                o0 = Fma.MultiplyAdd(p, Avx.LoadVector256(vt), o0);
                o1 = Fma.MultiplyAdd(p, Avx.LoadVector256(vt + 8), o1);
                o2 = Fma.MultiplyAdd(p, Avx.LoadVector256(vt + 16), o2);
                o3 = Fma.MultiplyAdd(p, Avx.LoadVector256(vt + 24), o3);
            }
            Avx.Store(o + d, Avx.Multiply(o0, inv));
            Avx.Store(o + d + 8, Avx.Multiply(o1, inv));
            Avx.Store(o + d + 16, Avx.Multiply(o2, inv));
            Avx.Store(o + d + 24, Avx.Multiply(o3, inv));
        }
        for (; d < hd; d += 8)
        {
            var acc = Vector256<float>.Zero;
            float* vt = values + d;
            for (t = 0; t < s; t++, vt += hd) acc = Fma.MultiplyAdd(Vector256.Create(scores[t]), Avx.LoadVector256(vt), acc);
            Avx.Store(o + d, Avx.Multiply(acc, inv));
        }
    }

    /// <summary>x[i] = silu(x[i]) * up[i] = x / (1 + exp(-x)) * up, 8 at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SiluTimes(float* x, float* up, long n)
    {
        long i = 0;
        var one = Vector256.Create(1f);
        for (; i + 8 <= n; i += 8)
        {
            var g = Avx.LoadVector256(x + i);
            Avx.Store(x + i, Avx.Multiply(Avx.Divide(g, Avx.Add(one, Vector256.Exp(Vector256.Negate(g)))), Avx.LoadVector256(up + i)));
        }
        for (; i < n; i++) x[i] = x[i] / (1 + MathF.Exp(-x[i])) * up[i];
    }

    static void AddInPlace(float* x, float* y, long n)
    {
        long i = 0;
        for (; i + 8 <= n; i += 8) Avx.Store(x + i, Avx.Add(Avx.LoadVector256(x + i), Avx.LoadVector256(y + i)));
        for (; i < n; i++) x[i] += y[i];
    }
}
