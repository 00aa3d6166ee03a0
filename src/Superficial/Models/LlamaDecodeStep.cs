using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// One decoding step of the Llama family (one new token per sequence, F32 up to <see cref="SkinnyLinear.MaxRows"/>
/// sequences or BF16 up to <see cref="SkinnyLinear.MaxRowsBf16"/>, on a CPU with AVX2) computed layer after layer on
/// raw buffers, with no tensor operation inside the layers: RMSNorm, the q/k/v projections (<see cref="SkinnyLinear"/>),
/// rotary embeddings, the cache write, attention over the cached keys and values, the output projection and residual,
/// RMSNorm, the SwiGLU MLP and its residual.
/// <para>
/// Why: the module path spends about 60 small libtorch operations per layer on a decoding step (each about 1.5-2 µs
/// through TorchSharp, plus its allocation and disposal), a quarter to a third of the step at batch 1 on the roofline
/// bench's model, where the weights' bytes, the step's real limit, take the rest (bench: <c>decode-profile</c>).
/// </para>
/// <para>
/// The arithmetic is the module path's: in F32, with every activation rounded to the compute dtype where the module
/// path's libtorch operation rounds its result (BF16: after each product, sum, projection and norm; nothing in F32).
/// Rotary embeddings, residual sums, the norms' scaling and the roundings are the same operations in the same order;
/// the norms' mean of squares, the attention's dot products and softmax, and SiLU's exponential are summed in another
/// order or computed by another routine (<c>Vector256.Exp</c>), so F32 hidden states agree with the module path to
/// about 1e-6 relative and BF16 ones to a unit or two of BF16 (tested), not bit for bit. Every row is computed alone, in
/// one fixed order, so a sequence's step does not depend on the rows decoded beside it nor on the thread split, as with
/// <see cref="SkinnyLinear"/>. Configurations outside the plain Llama block (post or sandwich norms, q/k norms,
/// soft-capping, a query scale, fused projections, GeGLU, Gemma's norms and embedding scale, layers split across
/// devices) and everything else (prefill, F16, GPUs, gradients) take the module path: <see cref="Applies"/> is false.
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

    /// <summary>Whether this call can take the step: one new token per row (at most as many rows as the kernel takes in the
    /// model's dtype), F32 or BF16 on the CPU, no gradients, the kernel on.</summary>
    public static bool Applies(CausalLM model, Tensor ids, KvCache? cache, bool split) =>
        cache is not null && !split && Enabled && SkinnyLinear.Enabled && model.DType is ScalarType.Float32 or ScalarType.BFloat16 &&
        model.Device.type == TorchSharp.DeviceType.CPU && !is_grad_enabled() && ids.dim() == 2 && ids.size(1) == 1 &&
        ids.size(0) <= (model.DType == ScalarType.Float32 ? SkinnyLinear.MaxRows : SkinnyLinear.MaxRowsBf16) && ids.device_type == TorchSharp.DeviceType.CPU;

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
                             Tensor ids, Tensor positions, AttentionMasks masks, KvCache cache) =>
        embedding.dtype == ScalarType.BFloat16
            ? Run<Bf16>(c, embedding, layers, finalNorm, rope, ids, positions, masks, cache)
            : Run<F32>(c, embedding, layers, finalNorm, rope, ids, positions, masks, cache);

    static Tensor Run<T>(ModelConfig c, Tensor embedding, IReadOnlyList<LayerWeights> layers, Tensor finalNorm, Rope rope,
                         Tensor ids, Tensor positions, AttentionMasks masks, KvCache cache) where T : struct, IElements
    {
        int b = (int)ids.size(0), h = c.HiddenSize, hd = c.HeadDim, heads = c.NumHeads, kvh = c.NumKvHeads, inter = c.IntermediateSize;
        int past = cache.Length, s = past + 1;
        cache.Reserve(s);
        using var scope = NewDisposeScope();
        var (cosT, sinT) = rope.Tables(positions, ScalarType.Float32, s);   // [B, 1, 1, hd]
        cosT = cosT.contiguous(); sinT = sinT.contiguous();
        var idc = ids.contiguous();
        var output = empty([b, 1, h], embedding.dtype);

        long qn = (long)heads * hd, kn = (long)kvh * hd, widest = Math.Max(Math.Max(qn, h), inter);
        // one F32 scratch block: x, xn (hidden), q and the attention output (heads x hd), k and v (kv heads x hd),
        // gate and up (inter), scores, a bias widened from BF16
        long floats = 2L * b * h + 2L * b * qn + 2L * b * kn + 2L * b * inter + s + widest;
        float* x = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
        try
        {
            float* xn = x + b * h, q = xn + b * h, att = q + b * qn, k = att + b * qn, v = k + b * kn, gate = v + b * kn,
                   up = gate + (long)b * inter, scores = up + (long)b * inter, biasBuf = scores + s;
            float* cos = F(cosT), sin = F(sinT);
            T.Round(cos, (long)b * hd); T.Round(sin, (long)b * hd);   // the module path's tables are in the compute dtype
            long* idp = (long*)Data(idc);
            byte* emb = Data(embedding);
            for (int r = 0; r < b; r++)
            {
                long id = idp[r];
                if ((ulong)id >= (ulong)c.VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary (0..{c.VocabSize - 1}).");
                T.Widen(emb + id * h * T.Bytes, x + (long)r * h, h);
            }
            float eps = (float)c.NormEps, scale = (float)(1 / Math.Sqrt(hd));
            int group = heads / kvh;
            // y [b, n] = xs [b, kk] Wᵀ + bias, rounded to the compute dtype as the module path's Linear rounds it
            void Linear(float* xs, Tensor w, Tensor? bias, float* y, long n, long kk)
            {
                float* bp = bias is null ? null : T.IsF32 ? F(bias) : biasBuf;
                if (bias is not null && !T.IsF32) T.Widen(Data(bias), bp, n);   // the kernel adds an F32 bias
                SkinnyLinear.Multiply(xs, b, Data(w), bp, y, n, kk, T.IsF32);
                T.Round(y, b * n);
            }
            for (int l = 0; l < layers.Count; l++)
            {
                var w = layers[l];
                for (int r = 0; r < b; r++) RmsNorm<T>(x + (long)r * h, Data(w.InputNorm), xn + (long)r * h, h, eps);
                Linear(xn, w.Q, w.QBias, q, qn, h);
                Linear(xn, w.K, w.KBias, k, kn, h);
                Linear(xn, w.V, w.VBias, v, kn, h);
                var (keys, values) = cache.Layer(l);
                byte* kc = Data(keys), vc = Data(values);
                long cap = cache.Capacity;
                var mask = masks.For(l);
                if (!mask.is_contiguous()) mask = mask.contiguous();
                byte* m = Data(mask);   // [B, 1, 1, S] bool
                for (int r = 0; r < b; r++)
                {
                    float* rc = cos + (long)r * hd, rs = sin + (long)r * hd;
                    for (int i = 0; i < heads; i++) Rotate<T>(q + r * qn + (long)i * hd, rc, rs, hd);
                    for (int j = 0; j < kvh; j++)
                    {
                        float* kr = k + r * kn + (long)j * hd;
                        Rotate<T>(kr, rc, rs, hd);
                        long at = (((long)r * kvh + j) * cap + past) * hd * T.Bytes;   // cache [B, kv heads, capacity, hd]
                        T.Narrow(kr, kc + at, hd);
                        T.Narrow(v + r * kn + (long)j * hd, vc + at, hd);
                    }
                    for (int i = 0; i < heads; i++)
                    {
                        long kv0 = ((long)r * kvh + i / group) * cap * hd * T.Bytes;
                        Attend<T>(q + r * qn + (long)i * hd, kc + kv0, vc + kv0, m + (long)r * s, s, hd, scale, scores, att + r * qn + (long)i * hd);
                    }
                }
                T.Round(att, b * qn);
                Linear(att, w.O, w.OBias, xn, h, qn);
                AddInPlace<T>(x, xn, (long)b * h);
                for (int r = 0; r < b; r++) RmsNorm<T>(x + (long)r * h, Data(w.PostNorm), xn + (long)r * h, h, eps);
                Linear(xn, w.Gate, w.GateBias, gate, inter, h);
                Linear(xn, w.Up, w.UpBias, up, inter, h);
                SiluTimes<T>(gate, up, (long)b * inter);
                Linear(gate, w.Down, w.DownBias, xn, h, inter);
                AddInPlace<T>(x, xn, (long)b * h);
            }
            for (int r = 0; r < b; r++) RmsNorm<T>(x + (long)r * h, Data(finalNorm), xn + (long)r * h, h, eps);
            T.Narrow(xn, Data(output), (long)b * h);
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(x);
        }
        GC.KeepAlive(embedding); GC.KeepAlive(layers); GC.KeepAlive(finalNorm);
        return output.MoveToOuterDisposeScope();
    }

    static byte* Data(Tensor t) => SkinnyLinear.Data(t);
    static float* F(Tensor t) => (float*)SkinnyLinear.Data(t);

    /// <summary>
    /// The compute dtype's side of the step: weights, cache and output are stored in it, and every activation is rounded
    /// to it where the module path's libtorch operation rounds its result (a no-op in F32). Arithmetic is in F32 either way.
    /// </summary>
    internal interface IElements
    {
        static abstract bool IsF32 { get; }
        static abstract int Bytes { get; }
        /// <summary>8 stored values from element <paramref name="i"/> on, as F32.</summary>
        static abstract Vector256<float> Load8(byte* p, long i);
        static abstract Vector256<float> Round8(Vector256<float> v);
        static abstract float Round1(float v);
        /// <summary>n stored values to F32.</summary>
        static abstract void Widen(byte* src, float* dst, long n);
        /// <summary>n F32 values (already rounded) stored in this dtype.</summary>
        static abstract void Narrow(float* src, byte* dst, long n);
        static abstract void Round(float* x, long n);
    }

    internal readonly struct F32 : IElements
    {
        public static bool IsF32 => true;
        public static int Bytes => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load8(byte* p, long i) => SkinnyLinear.F32Weights.Load8(p, i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round8(Vector256<float> v) => v;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Round1(float v) => v;
        public static void Widen(byte* src, float* dst, long n) => Buffer.MemoryCopy(src, dst, n * 4, n * 4);
        public static void Narrow(float* src, byte* dst, long n) => Buffer.MemoryCopy(src, dst, n * 4, n * 4);
        public static void Round(float* x, long n) { }
    }

    /// <summary>BF16: the top 16 bits of an F32; rounding to nearest, ties to even, as libtorch converts (NaN kept a NaN).</summary>
    internal readonly struct Bf16 : IElements
    {
        public static bool IsF32 => false;
        public static int Bytes => 2;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* p, long i) => SkinnyLinear.Bf16Weights.Load8(p, i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Round8(Vector256<float> v)
        {
            var bits = v.AsUInt32();
            var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >>> 16) & Vector256.Create(1u))) & Vector256.Create(0xFFFF0000u);
            var nan = Avx.CompareUnordered(v, v).AsUInt32();
            return Vector256.ConditionalSelect(nan, bits | Vector256.Create(0x00400000u), rounded).AsSingle();
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Round1(float v)
        {
            if (float.IsNaN(v)) return v;
            uint bits = BitConverter.SingleToUInt32Bits(v);
            return BitConverter.UInt32BitsToSingle((bits + 0x7FFFu + ((bits >> 16) & 1)) & 0xFFFF0000u);
        }
        public static void Widen(byte* src, float* dst, long n)
        {
            ushort* s = (ushort*)src;
            for (long i = 0; i < n; i++) ((uint*)dst)[i] = (uint)s[i] << 16;
        }
        public static void Narrow(float* src, byte* dst, long n)
        {
            ushort* d = (ushort*)dst;
            for (long i = 0; i < n; i++) d[i] = (ushort)(((uint*)src)[i] >> 16);
        }
        public static void Round(float* x, long n)
        {
            long i = 0;
            for (; i + 8 <= n; i += 8) Avx.Store(x + i, Round8(Avx.LoadVector256(x + i)));
            for (; i < n; i++) x[i] = Round1(x[i]);
        }
    }

    /// <summary>
    /// y = w * round(x / sqrt(mean(x²) + eps)), as <see cref="Models.RmsNorm"/> computes it: in F32, the normalised
    /// value rounded to the compute dtype, then scaled by w and rounded again. The mean of squares is summed in 8
    /// lanes (libtorch sums in another order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RmsNorm<T>(float* x, byte* w, float* y, int n, float eps) where T : struct, IElements
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
            Avx.Store(y + i, T.Round8(Avx.Multiply(T.Load8(w, i), T.Round8(Avx.Multiply(Avx.LoadVector256(x + i), rv)))));
    }

    /// <summary>HF's rotate-half rotary embedding in place: x*cos + rotate_half(x)*sin, each product and the sum rounded as libtorch's element-wise ops round them.</summary>
    static void Rotate<T>(float* x, float* cos, float* sin, int hd) where T : struct, IElements
    {
        int half = hd / 2;
        for (int j = 0; j < half; j++)
        {
            float a = x[j], bb = x[j + half];
            x[j] = T.Round1(T.Round1(a * cos[j]) + T.Round1(-bb * sin[j]));
            x[j + half] = T.Round1(T.Round1(bb * cos[j + half]) + T.Round1(a * sin[j + half]));
        }
    }

    /// <summary>
    /// softmax(q·kₛ × scale over the keys the mask allows) · v for one query head: <paramref name="keys"/> and
    /// <paramref name="values"/> point at the head's first cached position (rows of <paramref name="hd"/> stored values).
    /// Scores are taken 4 keys at a time (one 8-lane accumulator each, lanes summed in a fixed order), the exponentials
    /// 8 at a time, and the weighted sum of values 64 (then 32, then 8) dimensions at a time over all positions; all in
    /// F32. While the scores are taken, the keys ahead and the values are prefetched.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Attend<T>(float* q, byte* keys, byte* values, byte* allowed, int s, int hd, float scale, float* scores, float* o) where T : struct, IElements
    {
        int t = 0;
        var sc4 = Vector128.Create(scale);
        long row = (long)hd * T.Bytes;
        for (; t + 4 <= s; t += 4)
        {
            byte* k0 = keys + t * row, k1 = k0 + row, k2 = k1 + row, k3 = k2 + row;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            // The keys 16 rows ahead, and these 4 rows' values for the weighted sum below. In a micro-benchmark
            // (attention-variants) this took the cache from 12-15 to 21-24 GB/s; inside the decoding loop it measured
            // no difference (8.13 against 8.15 ms/token at context 960, README), where the cache reads at 18-23 GB/s.
            byte* pv = values + t * row;
            for (long at = 0; at < 4 * row; at += 64) Sse.Prefetch0(pv + at);
            if (t + 20 <= s) for (long at = 16 * row; at < 20 * row; at += 64) Sse.Prefetch0(k0 + at);
            for (int j = 0; j < hd; j += 8)
            {
                var qv = Avx.LoadVector256(q + j);
                a0 = Fma.MultiplyAdd(qv, T.Load8(k0, j), a0);
                a1 = Fma.MultiplyAdd(qv, T.Load8(k1, j), a1);
                a2 = Fma.MultiplyAdd(qv, T.Load8(k2, j), a2);
                a3 = Fma.MultiplyAdd(qv, T.Load8(k3, j), a3);
            }
            Sse.Store(scores + t, Sse.Multiply(SkinnyLinear.Sum4(a0, a1, a2, a3), sc4));
        }
        for (; t < s; t++)
        {
            byte* kt = keys + t * row;
            var a = Vector256<float>.Zero;
            for (int j = 0; j < hd; j += 8) a = Fma.MultiplyAdd(Avx.LoadVector256(q + j), T.Load8(kt, j), a);
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
        for (; d + 64 <= hd; d += 64)
        {
            // 64 dimensions per pass over the values (8 independent chains); each lane sums over t in order, as below
            Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default, o4 = default, o5 = default, o6 = default, o7 = default;
            byte* vt = values + (long)d * T.Bytes;
            for (t = 0; t < s; t++, vt += row)
            {
                var p = Vector256.Create(scores[t]);
                o0 = Fma.MultiplyAdd(p, T.Load8(vt, 0), o0);
                o1 = Fma.MultiplyAdd(p, T.Load8(vt, 8), o1);
                o2 = Fma.MultiplyAdd(p, T.Load8(vt, 16), o2);
                o3 = Fma.MultiplyAdd(p, T.Load8(vt, 24), o3);
                o4 = Fma.MultiplyAdd(p, T.Load8(vt, 32), o4);
                o5 = Fma.MultiplyAdd(p, T.Load8(vt, 40), o5);
                o6 = Fma.MultiplyAdd(p, T.Load8(vt, 48), o6);
                o7 = Fma.MultiplyAdd(p, T.Load8(vt, 56), o7);
            }
            Avx.Store(o + d, Avx.Multiply(o0, inv));
            Avx.Store(o + d + 8, Avx.Multiply(o1, inv));
            Avx.Store(o + d + 16, Avx.Multiply(o2, inv));
            Avx.Store(o + d + 24, Avx.Multiply(o3, inv));
            Avx.Store(o + d + 32, Avx.Multiply(o4, inv));
            Avx.Store(o + d + 40, Avx.Multiply(o5, inv));
            Avx.Store(o + d + 48, Avx.Multiply(o6, inv));
            Avx.Store(o + d + 56, Avx.Multiply(o7, inv));
        }
        for (; d + 32 <= hd; d += 32)
        {
            Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default;
            byte* vt = values + (long)d * T.Bytes;
            for (t = 0; t < s; t++, vt += row)
            {
                var p = Vector256.Create(scores[t]);
                o0 = Fma.MultiplyAdd(p, T.Load8(vt, 0), o0);
                o1 = Fma.MultiplyAdd(p, T.Load8(vt, 8), o1);
                o2 = Fma.MultiplyAdd(p, T.Load8(vt, 16), o2);
                o3 = Fma.MultiplyAdd(p, T.Load8(vt, 24), o3);
            }
            Avx.Store(o + d, Avx.Multiply(o0, inv));
            Avx.Store(o + d + 8, Avx.Multiply(o1, inv));
            Avx.Store(o + d + 16, Avx.Multiply(o2, inv));
            Avx.Store(o + d + 24, Avx.Multiply(o3, inv));
        }
        for (; d < hd; d += 8)
        {
            var acc = Vector256<float>.Zero;
            byte* vt = values + (long)d * T.Bytes;
            for (t = 0; t < s; t++, vt += row) acc = Fma.MultiplyAdd(Vector256.Create(scores[t]), T.Load8(vt, 0), acc);
            Avx.Store(o + d, Avx.Multiply(acc, inv));
        }
    }

    /// <summary>x[i] = round(round(silu(x[i])) * up[i]), silu(x) = x / (1 + exp(-x)), 8 at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SiluTimes<T>(float* x, float* up, long n) where T : struct, IElements
    {
        long i = 0;
        var one = Vector256.Create(1f);
        for (; i + 8 <= n; i += 8)
        {
            var g = Avx.LoadVector256(x + i);
            var a = T.Round8(Avx.Divide(g, Avx.Add(one, Vector256.Exp(Vector256.Negate(g)))));
            Avx.Store(x + i, T.Round8(Avx.Multiply(a, Avx.LoadVector256(up + i))));
        }
        for (; i < n; i++) x[i] = T.Round1(T.Round1(x[i] / (1 + MathF.Exp(-x[i]))) * up[i]);
    }

    static void AddInPlace<T>(float* x, float* y, long n) where T : struct, IElements
    {
        long i = 0;
        for (; i + 8 <= n; i += 8) Avx.Store(x + i, T.Round8(Avx.Add(Avx.LoadVector256(x + i), Avx.LoadVector256(y + i))));
        for (; i < n; i++) x[i] = T.Round1(x[i] + y[i]);
    }
}
