using Superficial.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Falcon with the new decoder architecture (Falcon-40B/180B): attention and MLP in parallel from the same residual,
/// each after its own LayerNorm (ln_attn, ln_mlp; or one input_layernorm), grouped key/value heads stored in one
/// query_key_value matrix as [kv group: its query heads, then its key, then its value], rotary positions, GELU MLP.
/// A separate class, as GPT-2 is, because every parameter name differs from the Llama family's
/// (transformer.h.N.self_attention.query_key_value.weight, ...); the blocks it shares are the same code.
/// </summary>
public sealed class FalconForCausalLM : CausalLM
{
    readonly FalconModel transformer;
    readonly Linear? lm_head;

    internal FalconForCausalLM(ModelConfig c, ScalarType dtype) : base("FalconForCausalLM", c)
    {
        transformer = new FalconModel(c, dtype);
        register_module("transformer", transformer);
        if (!c.TieWordEmbeddings) register_module("lm_head", lm_head = new Linear(c.HiddenSize, c.VocabSize, false, dtype));
    }

    public override Tensor LmHeadWeight => lm_head?.weight ?? transformer.word_embeddings.weight;

    public override Tensor Forward(Tensor inputIds, Tensor? positionIds = null, KvCache? cache = null, Tensor? attentionMask = null)
    {
        using var scope = NewDisposeScope();
        var (positions, masks) = Prepare(inputIds, positionIds, cache, attentionMask);
        var hidden = transformer.forward(inputIds, positions, masks.Causal, cache);
        cache?.Advance((int)inputIds.shape[1]);
        return hidden.MoveToOuterDisposeScope();
    }
}

internal sealed class FalconModel : nn.Module
{
    public readonly Embedding word_embeddings;
    readonly ModuleList<FalconBlock> h;
    readonly LayerNorm ln_f;
    readonly Rope rope;

    public FalconModel(ModelConfig c, ScalarType dtype) : base("FalconModel")
    {
        word_embeddings = new Embedding(c.VocabSize, c.HiddenSize, dtype);
        h = new ModuleList<FalconBlock>(Enumerable.Range(0, c.NumLayers).Select(i => new FalconBlock(c, i, dtype)).ToArray());
        ln_f = new LayerNorm(c.HiddenSize, c.NormEps, dtype);
        rope = new Rope(c);
        register_module("word_embeddings", word_embeddings);
        register_module("h", h);
        register_module("ln_f", ln_f);
    }

    public Tensor forward(Tensor ids, Tensor positions, Tensor mask, KvCache? cache)
    {
        var x = word_embeddings.forward(ids);
        var (cos, sin) = rope.Tables(positions, x.dtype, (cache?.Length ?? 0) + (int)ids.shape[1]);
        foreach (var block in h) x = block.forward(x, cos, sin, mask, cache);
        return ln_f.forward(x);
    }
}

internal sealed class FalconBlock : nn.Module
{
    readonly LayerNorm? ln_attn, ln_mlp, input_layernorm;
    readonly FalconAttention self_attention;
    readonly FalconMlp mlp;

    public FalconBlock(ModelConfig c, int layer, ScalarType dtype) : base("FalconDecoderLayer")
    {
        if (c.ParallelNorms == 2)
        {
            register_module("ln_attn", ln_attn = new LayerNorm(c.HiddenSize, c.NormEps, dtype));
            register_module("ln_mlp", ln_mlp = new LayerNorm(c.HiddenSize, c.NormEps, dtype));
        }
        else register_module("input_layernorm", input_layernorm = new LayerNorm(c.HiddenSize, c.NormEps, dtype));
        register_module("self_attention", self_attention = new FalconAttention(c, layer, dtype));
        register_module("mlp", mlp = new FalconMlp(c, dtype));
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var a = (ln_attn ?? input_layernorm)!.forward(x);
        var m = ln_mlp is null ? a : ln_mlp.forward(x);
        return x.Plus(self_attention.forward(a, cos, sin, mask, cache)).Plus(mlp.forward(m)).MoveToOuterDisposeScope();
    }
}

internal sealed class FalconAttention : nn.Module
{
    readonly Linear query_key_value, dense;
    readonly int heads, kvHeads, headDim, layer;

    public FalconAttention(ModelConfig c, int layer, ScalarType dtype) : base("FalconAttention")
    {
        this.layer = layer;
        heads = c.NumHeads; kvHeads = c.NumKvHeads; headDim = c.HeadDim;
        register_module("query_key_value", query_key_value = new Linear(c.HiddenSize, (heads + 2 * kvHeads) * headDim, c.QkvBias, dtype));
        register_module("dense", dense = new Linear(heads * headDim, c.HiddenSize, c.OutputBias, dtype));
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], g = heads / kvHeads;
        var qkv = query_key_value.forward(x).view(b, t, kvHeads, g + 2, headDim);
        var q = Rope.Apply(qkv.narrow(3, 0, g).reshape(b, t, heads, headDim).transpose(1, 2), cos, sin);
        var k = Rope.Apply(qkv.select(3, (int)g).transpose(1, 2), cos, sin);   // [B, kv, T, hd]
        var v = qkv.select(3, (int)g + 1).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var o = CausalLMAttention.Attend(q, k, v, mask);
        return dense.forward(o.transpose(1, 2).reshape(b, t, heads * headDim)).MoveToOuterDisposeScope();
    }
}

internal sealed class FalconMlp : nn.Module
{
    readonly Linear dense_h_to_4h, dense_4h_to_h;

    public FalconMlp(ModelConfig c, ScalarType dtype) : base("FalconMLP")
    {
        register_module("dense_h_to_4h", dense_h_to_4h = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype));
        register_module("dense_4h_to_h", dense_4h_to_h = new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype));
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return dense_4h_to_h.forward(nn.functional.gelu(dense_h_to_4h.forward(x))).MoveToOuterDisposeScope();
    }
}
