using Superficial.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// GPT-2: learned absolute positions, pre-LayerNorm blocks, GELU (tanh approximation for gelu_new) MLP,
/// Conv1D weights stored [in, out]. Names follow HF's GPT2LMHeadModel (transformer.h.N.attn.c_attn.weight);
/// checkpoints saved from GPT2Model without the "transformer." prefix load too.
/// </summary>
public sealed class Gpt2ForCausalLM : CausalLM
{
    readonly Gpt2Model transformer;
    readonly Linear? lm_head;

    internal Gpt2ForCausalLM(ModelConfig c, ScalarType dtype) : base("GPT2LMHeadModel", c)
    {
        transformer = new Gpt2Model(c, dtype);
        register_module("transformer", transformer);
        if (!c.TieWordEmbeddings)
        {
            lm_head = new Linear(c.HiddenSize, c.VocabSize, false, dtype);
            register_module("lm_head", lm_head);
        }
    }

    public override Tensor LmHeadWeight => lm_head?.weight ?? transformer.wte.weight;

    public override Tensor Forward(Tensor inputIds, Tensor? positionIds = null, KvCache? cache = null, Tensor? attentionMask = null)
    {
        using var scope = NewDisposeScope();
        var (positions, masks) = Prepare(inputIds, positionIds, cache, attentionMask);
        if (positions.max().item<long>() >= Config.MaxPositions)
            throw new ArgumentException($"position {positions.max().item<long>()} exceeds GPT-2's n_positions ({Config.MaxPositions}).");
        var hidden = transformer.forward(inputIds, positions, masks.Causal, cache);
        cache?.Advance((int)inputIds.shape[1]);
        return hidden.MoveToOuterDisposeScope();
    }
}

internal sealed class Gpt2Model : nn.Module
{
    public readonly Embedding wte, wpe;
    readonly ModuleList<Gpt2Block> h;
    readonly LayerNorm ln_f;

    public Gpt2Model(ModelConfig c, ScalarType dtype) : base("GPT2Model")
    {
        wte = new Embedding(c.VocabSize, c.HiddenSize, dtype);
        wpe = new Embedding(c.MaxPositions, c.HiddenSize, dtype);
        h = new ModuleList<Gpt2Block>(Enumerable.Range(0, c.NumLayers).Select(i => new Gpt2Block(c, i, dtype)).ToArray());
        ln_f = new LayerNorm(c.HiddenSize, c.NormEps, dtype);
        register_module("wte", wte);
        register_module("wpe", wpe);
        register_module("h", h);
        register_module("ln_f", ln_f);
    }

    public Tensor forward(Tensor ids, Tensor positions, Tensor mask, KvCache? cache)
    {
        var x = wte.forward(ids).Plus(wpe.forward(positions));
        foreach (var block in h) x = block.forward(x, mask, cache);
        return ln_f.forward(x);
    }
}

internal sealed class Gpt2Block : nn.Module
{
    readonly LayerNorm ln_1, ln_2;
    readonly Gpt2Attention attn;
    readonly Gpt2Mlp mlp;

    public Gpt2Block(ModelConfig c, int layer, ScalarType dtype) : base("GPT2Block")
    {
        ln_1 = new LayerNorm(c.HiddenSize, c.NormEps, dtype);
        attn = new Gpt2Attention(c, layer, dtype);
        ln_2 = new LayerNorm(c.HiddenSize, c.NormEps, dtype);
        mlp = new Gpt2Mlp(c, dtype);
        register_module("ln_1", ln_1);
        register_module("attn", attn);
        register_module("ln_2", ln_2);
        register_module("mlp", mlp);
    }

    public Tensor forward(Tensor x, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var y = x.Plus(attn.forward(ln_1.forward(x), mask, cache));
        return y.Plus(mlp.forward(ln_2.forward(y))).MoveToOuterDisposeScope();
    }
}

internal sealed class Gpt2Attention : nn.Module
{
    readonly Conv1D c_attn, c_proj;
    readonly int heads, headDim, layer;

    public Gpt2Attention(ModelConfig c, int layer, ScalarType dtype) : base("GPT2Attention")
    {
        this.layer = layer;
        heads = c.NumHeads; headDim = c.HeadDim;
        c_attn = new Conv1D(c.HiddenSize, 3 * c.HiddenSize, dtype);
        c_proj = new Conv1D(c.HiddenSize, c.HiddenSize, dtype);
        register_module("c_attn", c_attn);
        register_module("c_proj", c_proj);
    }

    public Tensor forward(Tensor x, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var qkv = c_attn.forward(x).view(b, t, 3, heads, headDim).permute(2, 0, 3, 1, 4); // [3, B, H, T, d]
        Tensor q = qkv[0], k = qkv[1], v = qkv[2];
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var o = CausalLMAttention.Attend(q, k, v, mask);
        return c_proj.forward(o.transpose(1, 2).reshape(b, t, heads * headDim)).MoveToOuterDisposeScope();
    }
}

internal sealed class Gpt2Mlp : nn.Module
{
    readonly Conv1D c_fc, c_proj;
    readonly bool tanh;

    public Gpt2Mlp(ModelConfig c, ScalarType dtype) : base("GPT2MLP")
    {
        c_fc = new Conv1D(c.HiddenSize, c.IntermediateSize, dtype);
        c_proj = new Conv1D(c.IntermediateSize, c.HiddenSize, dtype);
        tanh = c.HiddenAct != "gelu";
        register_module("c_fc", c_fc);
        register_module("c_proj", c_proj);
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var a = c_fc.forward(x);
        a = tanh ? nn.functional.gelu(a, TorchSharp.Modules.GELU.Approximate.tanh) : nn.functional.gelu(a);
        return c_proj.forward(a).MoveToOuterDisposeScope();
    }
}
