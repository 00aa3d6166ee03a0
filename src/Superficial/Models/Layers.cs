using Superficial.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Small building blocks with HF parameter names. Parameters are allocated uninitialised (loading
/// overwrites them; <see cref="CausalLM.Create"/> initialises them), so building a 7B model does not
/// spend minutes on random init that is thrown away.
/// </summary>
internal static class Param
{
    public static Parameter Empty(ScalarType dtype, params long[] shape)
    {
        using var data = empty(shape, dtype).DetachFromDisposeScope();   // the Parameter takes its handle; disposed here, not by the finalizer
        return new Parameter(data, requires_grad: true);
    }
}

/// <summary>y = x W^T + b, with W [out, in] as nn.Linear stores it; a decoding step's few F32 or BF16 rows on the CPU go to <see cref="SkinnyLinear"/>.</summary>
internal sealed class Linear : nn.Module
{
    public readonly Parameter weight;
    public readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype) : base("Linear")
    {
        weight = Param.Empty(dtype, outFeatures, inFeatures);
        register_parameter("weight", weight);
        if (hasBias) { bias = Param.Empty(dtype, outFeatures); register_parameter("bias", bias); }
    }

    public Tensor forward(Tensor x) => SkinnyLinear.TryForward(x, weight, bias) ?? nn.functional.linear(x, weight, bias);
}

/// <summary>y = x W + b, with W [in, out]: GPT-2's Conv1D layout (transposed relative to nn.Linear).</summary>
internal sealed class Conv1D : nn.Module
{
    public readonly Parameter weight;
    public readonly Parameter bias;

    public Conv1D(long inFeatures, long outFeatures, ScalarType dtype) : base("Conv1D")
    {
        weight = Param.Empty(dtype, inFeatures, outFeatures);
        bias = Param.Empty(dtype, outFeatures);
        register_parameter("weight", weight);
        register_parameter("bias", bias);
    }

    public Tensor forward(Tensor x) => addmm(bias, x.reshape(-1, x.shape[^1]), weight, 1, 1).view([.. x.shape[..^1], weight.shape[1]]);
}

/// <summary>
/// RMSNorm as in Llama: computed in float32, then cast back, then scaled by w. Gemma's (<paramref name="plusOne"/>)
/// scales by (1 + w) in float32 and casts back last, as transformers does for each.
/// </summary>
internal sealed class RmsNorm : nn.Module
{
    public readonly Parameter weight;
    readonly double eps;
    readonly bool plusOne;

    public RmsNorm(long size, double eps, ScalarType dtype, bool plusOne = false) : base("RmsNorm")
    {
        this.eps = eps;
        this.plusOne = plusOne;
        weight = Param.Empty(dtype, size);
        register_parameter("weight", weight);
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xf = x.dtype == ScalarType.Float32 ? x : x.to_type(ScalarType.Float32);
        var normed = xf * xf.pow(Scalars.Two).mean([-1], keepdim: true).Plus(eps).rsqrt();
        if (plusOne) return (normed * weight.to_type(ScalarType.Float32).Plus(1)).to_type(x.dtype).MoveToOuterDisposeScope();
        return (weight * normed.to_type(x.dtype)).MoveToOuterDisposeScope();
    }
}

internal sealed class LayerNorm : nn.Module
{
    public readonly Parameter weight;
    public readonly Parameter bias;
    readonly double eps;

    public LayerNorm(long size, double eps, ScalarType dtype) : base("LayerNorm")
    {
        this.eps = eps;
        weight = Param.Empty(dtype, size);
        bias = Param.Empty(dtype, size);
        register_parameter("weight", weight);
        register_parameter("bias", bias);
    }

    public Tensor forward(Tensor x) => nn.functional.layer_norm(x, [weight.shape[0]], weight, bias, eps);
}

/// <summary>A lookup table [count, dim] (nn.Embedding's "weight").</summary>
internal sealed class Embedding : nn.Module
{
    public readonly Parameter weight;

    public Embedding(long count, long dim, ScalarType dtype) : base("Embedding")
    {
        weight = Param.Empty(dtype, count, dim);
        register_parameter("weight", weight);
    }

    public Tensor forward(Tensor ids) => weight.index_select(0, ids.reshape(-1)).view([.. ids.shape, weight.shape[1]]);
}
