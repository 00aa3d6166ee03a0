using Superficial.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Rotary position embeddings in HF's "rotate half" layout (the first and second halves of each head
/// form the pairs), with the frequency scalings of transformers: linear, llama3, dynamic (NTK base
/// stretched to the sequence length), yarn (blend of interpolated and original frequencies, cos/sin
/// scaled) and longrope (Phi-3: per-frequency short or long factors, cos/sin scaled).
/// </summary>
internal sealed class Rope : IDisposable
{
    readonly ModelConfig config;
    readonly Tensor invFreq;       // [head_dim / 2], float32
    readonly Tensor? longInvFreq;  // longrope beyond the original context
    readonly double attentionScale = 1;

    public Rope(ModelConfig c)
    {
        config = c;
        using var scope = NewDisposeScope();
        int dim = c.HeadDim;
        // Same float32 arithmetic as transformers, so frequencies match bit for bit.
        // (Scalars' helpers: the same operations as the operators, with their scalars alive through each call)
        var exponent = Exponents(dim);
        var inv = pow(tensor((float)c.RopeTheta), exponent).reciprocal();   // 1f / x is reciprocal(x) * 1f
        switch (c.RopeScaling)
        {
            case { Type: "linear" } lin: inv = inv.Over((float)lin.Factor); break;
            case { Type: "llama3" } s: inv = Llama3(inv, s); break;
            case { Type: "yarn" } y:
                inv = Yarn(c, y, dim);
                attentionScale = y.AttentionFactor ?? 0.1 * Math.Log(y.Factor) + 1.0;
                break;
            case { Type: "longrope" } l:
                var bases = pow(tensor((float)c.RopeTheta), exponent);
                inv = (tensor(l.ShortFactor!.Select(x => (float)x).ToArray()) * bases).reciprocal();
                longInvFreq = (tensor(l.LongFactor!.Select(x => (float)x).ToArray()) * bases).reciprocal().DetachFromDisposeScope();
                attentionScale = l.Factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(l.Factor) / Math.Log(l.OriginalMaxPositions));
                break;
        }
        invFreq = inv.DetachFromDisposeScope();
    }

    static Tensor Llama3(Tensor inv, RopeScaling s)
    {
        double lowWavelen = s.OriginalMaxPositions / s.LowFreqFactor, highWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
        var wavelen = inv.reciprocal().Times(2 * Math.PI);
        var scaled = where(wavelen.Greater(lowWavelen), inv.Over(s.Factor), inv);
        var smooth = wavelen.reciprocal().Times(s.OriginalMaxPositions).Minus(s.LowFreqFactor).Over(s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (smooth.negative().Plus(1) * scaled).Over(s.Factor).Plus(smooth * scaled);
        var medium = wavelen.AtLeast(highWavelen).logical_and(wavelen.AtMost(lowWavelen));
        return where(medium, smoothed, scaled);
    }

    /// <summary>YaRN: original frequencies above the beta_fast rotations, interpolated ones below beta_slow, a linear ramp between.</summary>
    static Tensor Yarn(ModelConfig c, RopeScaling y, int dim)
    {
        double theta = c.RopeTheta;
        int maxPos = y.OriginalMaxPositions;
        double CorrectionDim(double rotations) => dim * Math.Log(maxPos / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = Math.Max(Math.Floor(CorrectionDim(y.BetaFast)), 0), high = Math.Min(Math.Ceiling(CorrectionDim(y.BetaSlow)), dim - 1);
        if (low == high) high += 0.001;
        var posFreqs = pow(tensor((float)theta), Exponents(dim));
        var extrapolation = posFreqs.reciprocal();
        var interpolation = posFreqs.Times((float)y.Factor).reciprocal();
        var keep = Scalars.Arange(dim / 2).to_type(ScalarType.Float32).Minus((float)low).Over((float)(high - low)).clamp(Scalars.Zero, Scalars.One).negative().Plus(1);
        return (interpolation * keep.negative().Plus(1)).Plus(extrapolation * keep);
    }

    /// <summary>Dynamic NTK: the rope base grows with the sequence length beyond max_position_embeddings (float32, as transformers).</summary>
    Tensor Dynamic(long seqLen)
    {
        var s = config.RopeScaling!;
        int dim = config.HeadDim, maxPos = s.OriginalMaxPositions;
        var f = tensor((float)s.Factor);
        using var power = (dim / (double)(dim - 2)).ToScalar();
        var theta = pow(f.Times(seqLen).Over(maxPos).Minus((float)s.Factor - 1), power).Times((float)config.RopeTheta);
        return pow(theta, Exponents(dim)).reciprocal();
    }

    /// <summary>
    /// cos and sin tables [B, 1, T, head_dim] for integer positions [B, T]. <paramref name="keyCount"/> is the
    /// number of keys attended to after this step (cached + new): longrope switches to its long factors when it
    /// exceeds the original context, as transformers does. Dynamic scaling reads the largest position + 1.
    /// </summary>
    public (Tensor cos, Tensor sin) Tables(Tensor positions, ScalarType dtype, long keyCount)
    {
        using var scope = NewDisposeScope();
        var inv = invFreq;
        if (config.RopeScaling is { Type: "dynamic" } d)
        {
            long seqLen = positions.max().item<long>() + 1;
            if (seqLen > d.OriginalMaxPositions) inv = Dynamic(seqLen);
        }
        else if (longInvFreq is not null && keyCount > config.RopeScaling!.OriginalMaxPositions) inv = longInvFreq;
        if (inv.device != positions.device) inv = inv.to(positions.device);
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv; // [B, T, hd/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);
        Tensor cos = emb.cos(), sin = emb.sin();
        if (attentionScale != 1) { cos = cos.Times(attentionScale); sin = sin.Times(attentionScale); }
        return (cos.to_type(dtype).MoveToOuterDisposeScope(), sin.to_type(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>x * cos + rotate_half(x) * sin for x [B, heads, T, head_dim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.size(-1) / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return (x * cos).Plus(rotated * sin).MoveToOuterDisposeScope();
    }

    /// <summary>0, 2, ..., dim - 2 over dim, in float32: the exponents of the rotary frequencies.</summary>
    static Tensor Exponents(int dim)
    {
        using Scalar stop = dim.ToScalar();
        return arange(Scalars.Zero, stop, Scalars.Two, ScalarType.Int64).to_type(ScalarType.Float32).Over(dim);
    }

    public void Dispose() { invFreq.Dispose(); longInvFreq?.Dispose(); }
}
