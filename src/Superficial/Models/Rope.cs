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
        var exponent = arange(0, dim, 2, ScalarType.Int64).to_type(ScalarType.Float32) / dim;
        var inv = 1.0f / pow(tensor((float)c.RopeTheta), exponent);
        switch (c.RopeScaling)
        {
            case { Type: "linear" } lin: inv = inv / (float)lin.Factor; break;
            case { Type: "llama3" } s: inv = Llama3(inv, s); break;
            case { Type: "yarn" } y:
                inv = Yarn(c, y, dim);
                attentionScale = y.AttentionFactor ?? 0.1 * Math.Log(y.Factor) + 1.0;
                break;
            case { Type: "longrope" } l:
                var bases = pow(tensor((float)c.RopeTheta), exponent);
                inv = 1.0f / (tensor(l.ShortFactor!.Select(x => (float)x).ToArray()) * bases);
                longInvFreq = (1.0f / (tensor(l.LongFactor!.Select(x => (float)x).ToArray()) * bases)).DetachFromDisposeScope();
                attentionScale = l.Factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(l.Factor) / Math.Log(l.OriginalMaxPositions));
                break;
        }
        invFreq = inv.DetachFromDisposeScope();
    }

    static Tensor Llama3(Tensor inv, RopeScaling s)
    {
        double lowWavelen = s.OriginalMaxPositions / s.LowFreqFactor, highWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
        var wavelen = 2 * Math.PI / inv;
        var scaled = where(wavelen > lowWavelen, inv / s.Factor, inv);
        var smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
        var medium = (wavelen >= highWavelen).logical_and(wavelen <= lowWavelen);
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
        var posFreqs = pow(tensor((float)theta), arange(0, dim, 2, ScalarType.Int64).to_type(ScalarType.Float32) / dim);
        var extrapolation = 1.0f / posFreqs;
        var interpolation = 1.0f / ((float)y.Factor * posFreqs);
        var keep = 1 - ((arange(dim / 2, ScalarType.Float32) - (float)low) / (float)(high - low)).clamp(0, 1);
        return interpolation * (1 - keep) + extrapolation * keep;
    }

    /// <summary>Dynamic NTK: the rope base grows with the sequence length beyond max_position_embeddings (float32, as transformers).</summary>
    Tensor Dynamic(long seqLen)
    {
        var s = config.RopeScaling!;
        int dim = config.HeadDim, maxPos = s.OriginalMaxPositions;
        var f = tensor((float)s.Factor);
        var theta = (float)config.RopeTheta * pow(f * seqLen / maxPos - ((float)s.Factor - 1), dim / (double)(dim - 2));
        return 1.0f / pow(theta, arange(0, dim, 2, ScalarType.Int64).to_type(ScalarType.Float32) / dim);
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
        if (attentionScale != 1) { cos = cos * attentionScale; sin = sin * attentionScale; }
        return (cos.to_type(dtype).MoveToOuterDisposeScope(), sin.to_type(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>x * cos + rotate_half(x) * sin for x [B, heads, T, head_dim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.size(-1) / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }

    public void Dispose() { invFreq.Dispose(); longInvFreq?.Dispose(); }
}
