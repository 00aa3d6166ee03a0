using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// The Llama family (Llama 2/3, TinyLlama, SmolLM, Mistral, Qwen2) in one model, switched by the config:
/// RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP, optional q/k/v biases, tied or
/// separate LM head. Parameter names equal HF's (model.layers.N.self_attn.q_proj.weight, ...).
/// </summary>
public sealed class LlamaForCausalLM : CausalLM
{
    readonly LlamaModel model;
    readonly Linear? lm_head;

    internal LlamaForCausalLM(ModelConfig c, ScalarType dtype) : base("LlamaForCausalLM", c)
    {
        model = new LlamaModel(c, dtype);
        register_module("model", model);
        if (!c.TieWordEmbeddings)
        {
            lm_head = new Linear(c.HiddenSize, c.VocabSize, false, dtype);
            register_module("lm_head", lm_head);
        }
    }

    public override Tensor LmHeadWeight => lm_head?.weight ?? model.embed_tokens.weight;

    public override Tensor Forward(Tensor inputIds, Tensor? positionIds = null, KvCache? cache = null, Tensor? attentionMask = null)
    {
        using var scope = NewDisposeScope();
        var (positions, mask) = Prepare(inputIds, positionIds, cache, attentionMask);
        var hidden = model.forward(inputIds, positions, mask, cache);
        cache?.Advance((int)inputIds.shape[1]);
        return hidden.MoveToOuterDisposeScope();
    }
}

internal sealed class LlamaModel : nn.Module
{
    public readonly Embedding embed_tokens;
    readonly ModuleList<LlamaDecoderLayer> layers;
    readonly RmsNorm norm;
    readonly Rope rope;

    public LlamaModel(ModelConfig c, ScalarType dtype) : base("LlamaModel")
    {
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, dtype);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new LlamaDecoderLayer(c, i, dtype)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.NormEps, dtype);
        rope = new Rope(c);
        register_module("embed_tokens", embed_tokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    public Tensor forward(Tensor ids, Tensor positions, Tensor mask, KvCache? cache)
    {
        var x = embed_tokens.forward(ids);
        var (cos, sin) = rope.Tables(positions, x.dtype);
        foreach (var layer in layers) x = layer.forward(x, cos, sin, mask, cache);
        return norm.forward(x);
    }
}

internal sealed class LlamaDecoderLayer : nn.Module
{
    readonly LlamaAttention self_attn;
    readonly LlamaMlp mlp;
    readonly RmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(ModelConfig c, int index, ScalarType dtype) : base("LlamaDecoderLayer")
    {
        self_attn = new LlamaAttention(c, index, dtype);
        mlp = new LlamaMlp(c, dtype);
        input_layernorm = new RmsNorm(c.HiddenSize, c.NormEps, dtype);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.NormEps, dtype);
        register_module("self_attn", self_attn);
        register_module("mlp", mlp);
        register_module("input_layernorm", input_layernorm);
        register_module("post_attention_layernorm", post_attention_layernorm);
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.forward(input_layernorm.forward(x), cos, sin, mask, cache);
        return (h + mlp.forward(post_attention_layernorm.forward(h))).MoveToOuterDisposeScope();
    }
}

internal sealed class LlamaAttention : nn.Module
{
    readonly Linear q_proj, k_proj, v_proj, o_proj;
    readonly int heads, kvHeads, headDim, layer;

    public LlamaAttention(ModelConfig c, int layer, ScalarType dtype) : base("LlamaAttention")
    {
        this.layer = layer;
        heads = c.NumHeads; kvHeads = c.NumKvHeads; headDim = c.HeadDim;
        q_proj = new Linear(c.HiddenSize, heads * headDim, c.QkvBias, dtype);
        k_proj = new Linear(c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype);
        v_proj = new Linear(c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype);
        o_proj = new Linear(heads * headDim, c.HiddenSize, c.OutputBias, dtype);
        register_module("q_proj", q_proj);
        register_module("k_proj", k_proj);
        register_module("v_proj", v_proj);
        register_module("o_proj", o_proj);
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = Rope.Apply(q_proj.forward(x).view(b, t, heads, headDim).transpose(1, 2), cos, sin);
        var k = Rope.Apply(k_proj.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2), cos, sin);
        var v = v_proj.forward(x).view(b, t, kvHeads, headDim).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var o = CausalLMAttention.Attend(q, k, v, mask);
        return o_proj.forward(o.transpose(1, 2).reshape(b, t, heads * headDim)).MoveToOuterDisposeScope();
    }
}

internal sealed class LlamaMlp : nn.Module
{
    readonly Linear gate_proj, up_proj, down_proj;

    public LlamaMlp(ModelConfig c, ScalarType dtype) : base("LlamaMLP")
    {
        gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        up_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        register_module("gate_proj", gate_proj);
        register_module("up_proj", up_proj);
        register_module("down_proj", down_proj);
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x)).MoveToOuterDisposeScope();
    }
}
