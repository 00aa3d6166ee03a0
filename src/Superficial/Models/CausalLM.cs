using Superficial.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// A decoder-only language model whose parameters are named exactly as the Hugging Face checkpoint's
/// tensors. <see cref="Forward"/> returns the final hidden state h (after the final norm); the logits are
/// <c>W h</c> with <see cref="LmHeadWeight"/> = W, which is the split the superficial head needs.
/// </summary>
public abstract class CausalLM : nn.Module
{
    public ModelConfig Config { get; }
    /// <summary>Where the checkpoint came from (folder), or null for a model built in memory.</summary>
    public string? SourceFolder { get; internal set; }
    /// <summary>Bytes of parameters that read the checkpoint file in place (stored in the compute dtype), not copied.</summary>
    public long MappedBytes { get; internal set; }
    /// <summary>Things noticed while loading that did not stop it (e.g. checkpoint tensors the model does not use).</summary>
    public IReadOnlyList<string> Warnings { get; internal set; } = [];

    protected CausalLM(string name, ModelConfig config) : base(name) => Config = config;

    /// <summary>The LM head W [vocab, hidden] (the embedding matrix when tied).</summary>
    public abstract Tensor LmHeadWeight { get; }

    /// <summary>
    /// Runs the model on <paramref name="inputIds"/> [B, T] (int64) and returns the final hidden states
    /// [B, T, hidden]. With a cache, the new keys/values are appended and earlier ones attended to.
    /// <paramref name="attentionMask"/> [B, past + T] holds 1 for tokens and 0 for (left) padding;
    /// positions default to the count of real tokens before each one (as HF does for left padding).
    /// </summary>
    public abstract Tensor Forward(Tensor inputIds, Tensor? positionIds = null, KvCache? cache = null, Tensor? attentionMask = null);

    /// <summary>
    /// The model's final logits for hidden states [..., hidden]: <c>FinishLogits(W h)</c>. Every place that
    /// turns a final hidden state into next-token logits (generation, scoring, extraction) uses this.
    /// </summary>
    public Tensor Logits(Tensor hidden)
    {
        if (Config.FinalLogitSoftcap is null) return HeadLogits(hidden);
        using var linear = HeadLogits(hidden);
        return FinishLogits(linear);
    }

    /// <summary>
    /// The linear part of the LM head, W x, without what the family does to the logits afterwards. The
    /// superficial head and every logit shift act here, before <see cref="FinishLogits"/>: the paper's
    /// z = W (h + A h) becomes cap tanh(W (h + A h) / cap) on Gemma 2. This is linear in x, so W (A h) is
    /// a shift of the pre-cap logits.
    /// </summary>
    public Tensor HeadLogits(Tensor x) => SkinnyLinear.TryForward(x, LmHeadWeight, null) ?? nn.functional.linear(x, LmHeadWeight);

    /// <summary>
    /// What the family applies to the head's linear logits: a new tensor cap tanh(z / cap) on Gemma 2, and
    /// <paramref name="linearLogits"/> itself where there is nothing to apply.
    /// </summary>
    public Tensor FinishLogits(Tensor linearLogits) => SoftCap(linearLogits, Config.FinalLogitSoftcap);

    /// <summary>cap tanh(z / cap) as a new tensor, or z itself when there is no cap.</summary>
    public static Tensor SoftCap(Tensor z, double? cap) => cap is double c ? z.Over(c).tanh_().TimesInPlace(c) : z;

    public ScalarType DType => LmHeadWeight.dtype;
    public Device Device => LmHeadWeight.device;
    public int VocabSize => Config.VocabSize;
    public int HiddenSize => Config.HiddenSize;

    /// <summary>An empty cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens (it grows if needed).</summary>
    public KvCache NewCache(int batch, int capacity) =>
        new(Config.NumLayers, batch, Config.NumKvHeads, Config.HeadDim, capacity, DType, LayerDevice);

    /// <summary>Where decoder layer <paramref name="layer"/> runs (the model's device unless it is split, see <see cref="Place"/>).</summary>
    public virtual Device LayerDevice(int layer) => Device;

    /// <summary>How the layers are split across devices, or null on one device.</summary>
    public DevicePlacement? Placement { get; protected set; }

    /// <summary>
    /// Moves the model's parts to the devices of <paramref name="placement"/>; Forward then moves hidden states from
    /// one device to the next between layers and returns them on the LM head's device (<see cref="Device"/>).
    /// </summary>
    public virtual void Place(DevicePlacement placement) =>
        throw new NotSupportedException($"{Config.ModelType}: splitting layers across devices is supported for the Llama family only; use one --device.");

    /// <summary>A randomly initialised model (normal(0, 0.02) weights, unit norms, zero biases), as HF initialises.</summary>
    public static CausalLM Create(ModelConfig config, long seed, ScalarType dtype = ScalarType.Float32)
    {
        var model = Build(config, dtype);
        using var gen = new Generator((ulong)seed);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
            {
                if (name.EndsWith(".bias")) p.zero_();
                else if (p.dim() == 1) p.fill_(config.NormPlusOne ? Scalars.Zero : Scalars.One);   // Gemma's norms scale by 1 + w
                else p.normal_(0, 0.02, gen);
            }
        model.eval();
        return model;
    }

    /// <summary>Loads a Hugging Face model folder (config.json + *.safetensors).</summary>
    public static CausalLM Load(string folder, ScalarType? dtype = null, IProgress<LoadProgress>? progress = null) =>
        ModelLoader.Load(folder, dtype, progress);

    internal static CausalLM Build(ModelConfig config, ScalarType dtype) =>
        config.IsGpt2 ? new Gpt2ForCausalLM(config, dtype) : config.IsFalcon ? new FalconForCausalLM(config, dtype) : new LlamaForCausalLM(config, dtype);

    /// <summary>Writes config.json, generation_config.json and model.safetensors (each atomically).</summary>
    public void SaveHf(string folder) => ModelLoader.Save(this, folder);

    /// <summary>Tensor names the checkpoint must provide (tied heads excluded).</summary>
    public IEnumerable<string> ParameterNames() => named_parameters().Select(p => p.name);

    // ---- shared attention plumbing ----

    /// <summary>
    /// Positions [B, T] and the boolean attention masks [B, 1, T, past + T] (true = attend): causal, and causal
    /// within the sliding window for the layers that have one (see <see cref="AttentionMasks"/>).
    /// </summary>
    protected internal (Tensor positions, AttentionMasks masks) Prepare(Tensor inputIds, Tensor? positionIds, KvCache? cache, Tensor? attentionMask)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        int past = cache?.Length ?? 0;
        long s = past + t;
        var dev = inputIds.device;
        Tensor keyOk;
        if (attentionMask is null) keyOk = ones([b, s], ScalarType.Bool, dev);
        else
        {
            if (attentionMask.dim() != 2 || attentionMask.shape[0] != b || attentionMask.shape[1] != s)
                throw new ArgumentException(
                    $"attentionMask has shape [{string.Join(", ", attentionMask.shape)}]; expected [{b}, {s}] (batch, cached + new tokens).");
            keyOk = attentionMask.to_type(ScalarType.Bool);
        }
        var positions = positionIds ?? (attentionMask is null
            ? Scalars.Arange(past, s, dev).unsqueeze(0).expand(b, t)
            : attentionMask.to_type(ScalarType.Int64).cumsum(1).Minus(1).clamp_min(Scalars.Zero).narrow(1, past, t));
        var q = Scalars.Arange(past, s, dev).unsqueeze(1); // [T, 1]
        var k = Scalars.Arange(0, s, dev).unsqueeze(0);    // [1, S]
        // A token may always see itself, so rows of padding stay finite (they are never read).
        Tensor Mask(Tensor allowed) => allowed.unsqueeze(0).unsqueeze(0).logical_and(keyOk.unsqueeze(1).unsqueeze(1)).logical_or(k == q);
        var causal = Mask(k <= q);
        var windowed = Config.SlidingWindow is int w ? Mask((k <= q).logical_and(k > q.Minus(w))) : null;
        return (positions, new AttentionMasks(Config, causal, windowed));
    }
}

/// <summary>The attention masks of one forward pass: each layer takes the causal one or, if it has a sliding window, the windowed one.</summary>
public sealed class AttentionMasks(ModelConfig config, Tensor causal, Tensor? windowed)
{
    public Tensor Causal => causal;
    public Tensor For(int layer) => config.WindowOf(layer) is not null ? windowed! : causal;
    /// <summary>The same masks on another device (a split model's next stage).</summary>
    public AttentionMasks To(Device device) => new(config, causal.to(device), windowed?.to(device));
}

/// <summary>Progress of a model load: tensors done out of total, and bytes copied.</summary>
public readonly record struct LoadProgress(int Done, int Total, long Bytes);

/// <summary>Attention shared by the model families.</summary>
internal static class CausalLMAttention
{
    /// <summary>
    /// Scaled dot-product attention with grouped-query heads: q [B, H, T, d], k/v [B, KV, S, d].
    /// Query heads sharing a key/value head are folded into the sequence axis instead of copying k and v.
    /// </summary>
    /// <param name="scale">Scores are q.k times this (null: 1/sqrt(head_dim)).</param>
    /// <param name="softcap">Gemma 2: scores become cap tanh(score / cap) before masking (computed without the fused kernel).</param>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor mask, double? scale = null, double? softcap = null)
    {
        long[] qShape = q.shape, kShape = k.shape;   // one native read each (a shape read costs about 1 µs)
        long b = qShape[0], h = qShape[1], t = qShape[2], d = qShape[3], kvh = kShape[1], s = kShape[2];
        long g = h / kvh;
        var qg = h == kvh ? q : q.reshape(b, kvh, g * t, d);
        var mg = h == kvh ? mask : mask.unsqueeze(2).expand(b, 1, g, t, s).reshape(b, 1, g * t, s);
        Tensor o;
        if (softcap is double cap)
        {
            using var scope = NewDisposeScope();
            var scores = qg.matmul(k.transpose(-2, -1)).TimesInPlace(scale ?? 1 / Math.Sqrt(d));
            scores = scores.OverInPlace(cap).tanh_().TimesInPlace(cap).masked_fill_(mg.logical_not(), Scalars.NegativeInfinity);
            o = scores.softmax(-1, ScalarType.Float32).to_type(q.dtype).matmul(v).MoveToOuterDisposeScope();
        }
        else if (scale is double sc)
        {
            // the fused kernel divides by sqrt(d); pre-scaling q gives scores q.k * sc
            using var qs = qg.Times(sc * Math.Sqrt(d));
            o = nn.functional.scaled_dot_product_attention(qs, k, v, mg);
        }
        else o = nn.functional.scaled_dot_product_attention(qg, k, v, mg);
        return h == kvh ? o : o.view(b, h, t, d);
    }
}
