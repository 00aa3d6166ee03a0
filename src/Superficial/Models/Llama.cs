using Superficial.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// The Llama family (Llama 2/3, TinyLlama, SmolLM, Mistral, Qwen2, Gemma, Gemma 2, OLMo 2, Phi-3) in one model,
/// switched by the config: RMSNorm (Gemma: x(1 + w)), rotary embeddings (linear, llama3, dynamic, yarn, longrope
/// scaling), grouped-query attention with optional per-layer sliding windows, score soft-capping and q/k norms,
/// gated MLP (SwiGLU or GeGLU), norms before, after or around each sub-layer, optional q/k/v biases, fused
/// projections (Phi-3), tied or separate LM head. Parameter names equal HF's (model.layers.N.self_attn.q_proj.weight, ...).
/// </summary>
public sealed class LlamaForCausalLM : CausalLM
{
    readonly LlamaModel model;
    readonly Linear? lm_head;

    readonly bool decodeStep;

    internal LlamaForCausalLM(ModelConfig c, ScalarType dtype) : base("LlamaForCausalLM", c)
    {
        decodeStep = LlamaDecodeStep.Supports(c);
        model = new LlamaModel(c, dtype);
        register_module("model", model);
        if (!c.TieWordEmbeddings)
        {
            lm_head = new Linear(c.HiddenSize, c.VocabSize, false, dtype);
            register_module("lm_head", lm_head);
        }
    }

    public override Tensor LmHeadWeight => lm_head?.weight ?? model.embed_tokens.weight;

    public override Device LayerDevice(int layer) => Placement is { } p ? new Device(p.Devices[p.LayerDevices[layer]]) : Device;

    public override void Place(DevicePlacement placement)
    {
        if (placement.LayerDevices.Count != Config.NumLayers)
            throw new ArgumentException($"the placement has {placement.LayerDevices.Count} layers; the model has {Config.NumLayers}.");
        Device At(int d) => new(placement.Devices[d]);
        model.Place(placement);
        lm_head?.to(At(placement.HeadDevice));
        Placement = placement;
    }

    public override Tensor Forward(Tensor inputIds, Tensor? positionIds = null, KvCache? cache = null, Tensor? attentionMask = null)
    {
        using var scope = NewDisposeScope();
        if (Placement is { } p)
        {
            // inputs start where the embedding is; the final hidden state ends where the LM head is
            var first = new Device(p.Devices[p.EmbeddingDevice]);
            (inputIds, positionIds, attentionMask) = (inputIds.to(first), positionIds?.to(first), attentionMask?.to(first));
        }
        var (positions, masks) = Prepare(inputIds, positionIds, cache, attentionMask);
        var hidden = decodeStep && LlamaDecodeStep.Applies(this, inputIds, cache, Placement is not null)
            ? model.DecodeStep(inputIds, positions, masks, cache!)
            : model.forward(inputIds, positions, masks, cache);
        cache?.Advance((int)inputIds.shape[1]);
        return hidden.to(Device).MoveToOuterDisposeScope();
    }
}

internal sealed class LlamaModel : nn.Module
{
    public readonly Embedding embed_tokens;
    readonly ModuleList<LlamaDecoderLayer> layers;
    readonly RmsNorm norm;
    readonly Rope rope;
    readonly double? embedScale;
    Device[]? layerDevices;   // set when the layers are split across devices
    int[]? layerStage;        // the device index of each layer: the hidden state moves where it changes
    Device? normDevice;

    readonly ModelConfig config;

    public LlamaModel(ModelConfig c, ScalarType dtype) : base("LlamaModel")
    {
        config = c;
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, dtype);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new LlamaDecoderLayer(c, i, dtype)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.NormEps, dtype, c.NormPlusOne);
        rope = new Rope(c);
        if (c.ScaleEmbeddings) embedScale = Math.Sqrt(c.HiddenSize);
        register_module("embed_tokens", embed_tokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    public void Place(DevicePlacement p)
    {
        embed_tokens.to(new Device(p.Devices[p.EmbeddingDevice]));
        EmbeddingStage = p.EmbeddingDevice;
        layerDevices = p.LayerDevices.Select(d => new Device(p.Devices[d])).ToArray();
        layerStage = p.LayerDevices.ToArray();
        for (int i = 0; i < layerDevices.Length; i++) layers[i].to(layerDevices[i]);
        normDevice = new Device(p.Devices[p.HeadDevice]);
        norm.to(normDevice);
    }

    public Tensor forward(Tensor ids, Tensor positions, AttentionMasks masks, KvCache? cache)
    {
        var x = embed_tokens.forward(ids);
        // Gemma multiplies by sqrt(hidden) rounded to the compute dtype, as transformers does
        if (embedScale is double e) x = x * tensor(e, ScalarType.Float64).to_type(x.dtype);
        var (cos, sin) = rope.Tables(positions, x.dtype, (cache?.Length ?? 0) + (int)ids.shape[1]);
        int i = 0;
        foreach (var layer in layers)
        {
            if (layerDevices is not null && (i == 0 ? layerStage![0] != EmbeddingStage : layerStage![i] != layerStage[i - 1]))
            {
                // the next stage: hidden state, rotary tables and masks move to the layer's device
                var d = layerDevices[i];
                (x, cos, sin, masks) = (x.to(d), cos.to(d), sin.to(d), masks.To(d));
            }
            x = layer.forward(x, cos, sin, masks.For(i++), cache);
        }
        if (normDevice is not null) x = x.to(normDevice);
        return norm.forward(x);
    }

    int EmbeddingStage;
    LlamaDecodeStep.LayerWeights[]? decodeWeights;

    /// <summary>A decoding step on raw buffers (see <see cref="LlamaDecodeStep"/>): the same result as <see cref="forward"/> to about 1e-6.</summary>
    public Tensor DecodeStep(Tensor ids, Tensor positions, AttentionMasks masks, KvCache cache)
    {
        decodeWeights ??= layers.Select(l => l.DecodeWeights()).ToArray();
        return LlamaDecodeStep.Run(config, embed_tokens.weight, decodeWeights, norm.weight, rope, ids, positions, masks, cache);
    }
}

/// <summary>
/// One block. The norms keep the checkpoint's names, whose roles depend on the placement: Llama
/// (pre) normalises the input of attention (input_layernorm) and of the MLP (post_attention_layernorm);
/// OLMo 2 (post) normalises the outputs of attention (post_attention_layernorm) and of the MLP
/// (post_feedforward_layernorm); Gemma 2 (sandwich) does both, with pre_feedforward_layernorm before the MLP.
/// </summary>
internal sealed class LlamaDecoderLayer : nn.Module
{
    readonly LlamaAttention self_attn;
    readonly LlamaMlp mlp;
    readonly RmsNorm? input_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm;
    readonly RmsNorm post_attention_layernorm;
    readonly NormPlacement placement;

    public LlamaDecoderLayer(ModelConfig c, int index, ScalarType dtype) : base("LlamaDecoderLayer")
    {
        placement = c.NormPlacement;
        self_attn = new LlamaAttention(c, index, dtype);
        mlp = new LlamaMlp(c, dtype);
        RmsNorm Norm() => new(c.HiddenSize, c.NormEps, dtype, c.NormPlusOne);
        register_module("self_attn", self_attn);
        register_module("mlp", mlp);
        if (placement != NormPlacement.Post) register_module("input_layernorm", input_layernorm = Norm());
        register_module("post_attention_layernorm", post_attention_layernorm = Norm());
        if (placement == NormPlacement.Sandwich) register_module("pre_feedforward_layernorm", pre_feedforward_layernorm = Norm());
        if (placement != NormPlacement.Pre) register_module("post_feedforward_layernorm", post_feedforward_layernorm = Norm());
    }

    /// <summary>The weights <see cref="LlamaDecodeStep"/> reads (pre-norm blocks only).</summary>
    public LlamaDecodeStep.LayerWeights DecodeWeights()
    {
        var (q, k, v, o) = self_attn.Projections();
        var (gate, up, down) = mlp.Projections();
        return new(input_layernorm!.weight, q.weight, q.bias, k.weight, k.bias, v.weight, v.bias, o.weight, o.bias,
                   post_attention_layernorm.weight, gate.weight, gate.bias, up.weight, up.bias, down.weight, down.bias);
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        Tensor h;
        switch (placement)
        {
            case NormPlacement.Pre:
                h = x.Plus(self_attn.forward(input_layernorm!.forward(x), cos, sin, mask, cache));
                h = h.Plus(mlp.forward(post_attention_layernorm.forward(h)));
                break;
            case NormPlacement.Post:
                h = x.Plus(post_attention_layernorm.forward(self_attn.forward(x, cos, sin, mask, cache)));
                h = h.Plus(post_feedforward_layernorm!.forward(mlp.forward(h)));
                break;
            default:
                h = x.Plus(post_attention_layernorm.forward(self_attn.forward(input_layernorm!.forward(x), cos, sin, mask, cache)));
                h = h.Plus(post_feedforward_layernorm!.forward(mlp.forward(pre_feedforward_layernorm!.forward(h))));
                break;
        }
        return h.MoveToOuterDisposeScope();
    }
}

internal sealed class LlamaAttention : nn.Module
{
    readonly Linear? q_proj, k_proj, v_proj, qkv_proj;
    readonly Linear o_proj;
    readonly RmsNorm? q_norm, k_norm;
    readonly int heads, kvHeads, headDim, layer;
    readonly double? scale, softcap;

    public LlamaAttention(ModelConfig c, int layer, ScalarType dtype) : base("LlamaAttention")
    {
        this.layer = layer;
        heads = c.NumHeads; kvHeads = c.NumKvHeads; headDim = c.HeadDim;
        scale = c.QueryPreAttnScalar is double s ? 1 / Math.Sqrt(s) : null;
        softcap = c.AttnLogitSoftcap;
        if (c.FusedProjections)
            register_module("qkv_proj", qkv_proj = new Linear(c.HiddenSize, (heads + 2 * kvHeads) * headDim, c.QkvBias, dtype));
        else
        {
            register_module("q_proj", q_proj = new Linear(c.HiddenSize, heads * headDim, c.QkvBias, dtype));
            register_module("k_proj", k_proj = new Linear(c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype));
            register_module("v_proj", v_proj = new Linear(c.HiddenSize, kvHeads * headDim, c.QkvBias, dtype));
        }
        register_module("o_proj", o_proj = new Linear(heads * headDim, c.HiddenSize, c.OutputBias, dtype));
        if (c.QkNorm)
        {
            register_module("q_norm", q_norm = new RmsNorm(heads * headDim, c.NormEps, dtype));
            register_module("k_norm", k_norm = new RmsNorm(kvHeads * headDim, c.NormEps, dtype));
        }
    }

    /// <summary>The separate q, k, v and o projections (not Phi-3's fused one).</summary>
    public (Linear q, Linear k, Linear v, Linear o) Projections() => (q_proj!, k_proj!, v_proj!, o_proj);

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.size(0), t = x.size(1);
        Tensor q, k, v;
        if (qkv_proj is not null)
        {
            var qkv = qkv_proj.forward(x);   // [q heads | k heads | v heads] along the last axis
            q = qkv.narrow(-1, 0, heads * headDim);
            k = qkv.narrow(-1, heads * headDim, kvHeads * headDim);
            v = qkv.narrow(-1, (heads + kvHeads) * headDim, kvHeads * headDim);
        }
        else (q, k, v) = (q_proj!.forward(x), k_proj!.forward(x), v_proj!.forward(x));
        if (q_norm is not null) (q, k) = (q_norm.forward(q), k_norm!.forward(k));
        q = Rope.Apply(q.reshape(b, t, heads, headDim).transpose(1, 2), cos, sin);
        k = Rope.Apply(k.reshape(b, t, kvHeads, headDim).transpose(1, 2), cos, sin);
        v = v.reshape(b, t, kvHeads, headDim).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var o = CausalLMAttention.Attend(q, k, v, mask, scale, softcap);
        return o_proj.forward(o.transpose(1, 2).reshape(b, t, heads * headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>down(act(gate x) * up x): SwiGLU (silu) or GeGLU (Gemma's gelu); Phi-3 stores gate and up as one gate_up_proj.</summary>
internal sealed class LlamaMlp : nn.Module
{
    readonly Linear? gate_proj, up_proj, gate_up_proj;
    readonly Linear down_proj;
    readonly string act;
    readonly long inter;

    public LlamaMlp(ModelConfig c, ScalarType dtype) : base("LlamaMLP")
    {
        act = c.HiddenAct;
        inter = c.IntermediateSize;
        if (c.FusedProjections)
            register_module("gate_up_proj", gate_up_proj = new Linear(c.HiddenSize, 2 * c.IntermediateSize, c.MlpBias, dtype));
        else
        {
            register_module("gate_proj", gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype));
            register_module("up_proj", up_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype));
        }
        register_module("down_proj", down_proj = new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype));
    }

    /// <summary>The separate gate, up and down projections (not Phi-3's fused gate_up).</summary>
    public (Linear gate, Linear up, Linear down) Projections() => (gate_proj!, up_proj!, down_proj);

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor gate, up;
        if (gate_up_proj is not null)
        {
            var gu = gate_up_proj.forward(x);
            (gate, up) = (gu.narrow(-1, 0, inter), gu.narrow(-1, inter, inter));
        }
        else (gate, up) = (gate_proj!.forward(x), up_proj!.forward(x));
        var a = act switch
        {
            "silu" => nn.functional.silu(gate),
            "gelu" => nn.functional.gelu(gate),
            _ => nn.functional.gelu(gate, GELU.Approximate.tanh), // gelu_pytorch_tanh, gelu_new
        };
        return down_proj.forward(a * up).MoveToOuterDisposeScope();
    }
}
