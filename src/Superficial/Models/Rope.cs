using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Rotary position embeddings in HF's "rotate half" layout (the first and second halves of each head
/// form the pairs), with linear and Llama-3 frequency scaling.
/// </summary>
internal sealed class Rope : IDisposable
{
    readonly Tensor invFreq; // [head_dim / 2], float32

    public Rope(ModelConfig c)
    {
        using var scope = NewDisposeScope();
        int dim = c.HeadDim;
        // Same float32 arithmetic as transformers, so frequencies match bit for bit.
        var inv = 1.0f / pow(tensor((float)c.RopeTheta), arange(0, dim, 2, ScalarType.Int64).to_type(ScalarType.Float32) / dim);
        if (c.RopeScaling is { Type: "linear" } lin) inv = inv / (float)lin.Factor;
        else if (c.RopeScaling is { Type: "llama3" } s) inv = Llama3(inv, s);
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

    /// <summary>cos and sin tables [B, 1, T, head_dim] for integer positions [B, T].</summary>
    public (Tensor cos, Tensor sin) Tables(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inv = invFreq.device == positions.device ? invFreq : invFreq.to(positions.device);
        var freqs = positions.to_type(ScalarType.Float32).unsqueeze(-1) * inv; // [B, T, hd/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);
        return (emb.cos().to_type(dtype).MoveToOuterDisposeScope(), emb.sin().to_type(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>x * cos + rotate_half(x) * sin for x [B, heads, T, head_dim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }

    public void Dispose() => invFreq.Dispose();
}
