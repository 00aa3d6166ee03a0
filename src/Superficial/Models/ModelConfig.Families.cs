using System.Text.Json.Nodes;

namespace Superficial.Models;

/// <summary>Where a decoder layer's RMSNorms sit relative to its attention and feed-forward sub-layers.</summary>
public enum NormPlacement
{
    /// <summary>Llama: x + f(norm(x)).</summary>
    Pre,
    /// <summary>OLMo 2: x + norm(f(x)).</summary>
    Post,
    /// <summary>Gemma 2: x + norm(f(norm(x))), with separate norms before and after each sub-layer.</summary>
    Sandwich,
}

/// <summary>
/// The switches that carry the Gemma, Gemma 2, OLMo 2 and Phi-3 families (and the rope scalings dynamic, yarn and
/// longrope) on the one Llama-family model. Each is read from config.json with transformers' default when absent;
/// a field that would change the computation in a way this model does not implement is refused, naming it.
/// </summary>
public sealed partial record ModelConfig
{
    /// <summary>model_type values carried by the switches below (besides llama, mistral and qwen2).</summary>
    public static IReadOnlyList<string> FamilyTypes => ["gemma", "gemma2", "olmo2", "phi3"];

    /// <summary>Gemma: RMSNorm multiplies by (1 + w), in float32 before casting back.</summary>
    public bool NormPlusOne { get; init; }
    /// <summary>Gemma: token embeddings are multiplied by sqrt(hidden_size) (rounded to the compute dtype).</summary>
    public bool ScaleEmbeddings { get; init; }
    public NormPlacement NormPlacement { get; init; } = NormPlacement.Pre;
    /// <summary>OLMo 2: RMSNorm over the whole q and k projections (all heads together) before rotary embedding.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Phi-3: q/k/v in one qkv_proj and gate/up in one gate_up_proj (the checkpoint's names and layout).</summary>
    public bool FusedProjections { get; init; }
    /// <summary>Gemma 2: attention scores are scaled by this^-1/2 instead of head_dim^-1/2.</summary>
    public double? QueryPreAttnScalar { get; init; }
    /// <summary>Gemma 2: attention scores become cap tanh(score / cap) before masking and softmax.</summary>
    public double? AttnLogitSoftcap { get; init; }
    /// <summary>Gemma 2: the final logits are cap tanh(W h / cap): see <see cref="CausalLM.Logits"/>.</summary>
    public double? FinalLogitSoftcap { get; init; }
    /// <summary>The layers <see cref="SlidingWindow"/> applies to; null = every layer (Mistral, Phi-3).</summary>
    public IReadOnlyList<int>? SlidingLayers { get; init; }

    /// <summary>The sliding window of one layer, or null where it attends to every earlier key.</summary>
    public int? WindowOf(int layer) => SlidingWindow is int w && (SlidingLayers is null || SlidingLayers.Contains(layer)) ? w : null;

    /// <summary>The architecture's features in words (for inspect and manifests).</summary>
    public IReadOnlyList<string> Features()
    {
        var f = new List<string>();
        if (IsGpt2) return ["learned positions", "LayerNorm", HiddenAct];
        f.Add($"rope theta {RopeTheta}" + (RopeScaling is { } s ? $", {s.Type} scaling x{s.Factor:0.###}" +
            (s.Type == "longrope" ? $" (original {s.OriginalMaxPositions} positions)" : "") : ""));
        if (NumKvHeads != NumHeads) f.Add(NumKvHeads == 1 ? "multi-query attention" : $"grouped-query attention ({NumHeads / NumKvHeads} heads per kv head)");
        if (SlidingWindow is int w)
            f.Add($"sliding window {w} on " + (SlidingLayers is null ? "every layer" : $"layers {string.Join(",", SlidingLayers)}"));
        if (QueryPreAttnScalar is double q) f.Add($"attention scale {q}^-1/2");
        if (AttnLogitSoftcap is double a) f.Add($"attention soft-cap {a}");
        if (FinalLogitSoftcap is double c) f.Add($"final logit soft-cap {c}");
        if (NormPlusOne) f.Add("RMSNorm x(1 + w)");
        if (ScaleEmbeddings) f.Add("embeddings x sqrt(hidden)");
        if (NormPlacement != NormPlacement.Pre) f.Add(NormPlacement == NormPlacement.Post ? "norms after each sub-layer" : "norms before and after each sub-layer");
        if (QkNorm) f.Add("q/k norms");
        if (FusedProjections) f.Add("fused qkv_proj and gate_up_proj");
        if (QkvBias) f.Add("q/k/v biases");
        if (IsFalcon) f.Add($"parallel attention and MLP ({(ParallelNorms == 2 ? "ln_attn, ln_mlp" : "one input_layernorm")}); GELU MLP");
        else f.Add(HiddenAct == "silu" ? "SwiGLU" : $"GeGLU ({HiddenAct})");
        return f;
    }

    static string FamilyActivation(Reader r, string type)
    {
        // Gemma's modeling code reads hidden_activation only (hidden_act is ignored); absent means the tanh GELU.
        var act = type is "gemma" or "gemma2" ? r.Str("hidden_activation") ?? "gelu_pytorch_tanh" : r.Str("hidden_act") ?? "silu";
        if (FamilyTypes.Contains(type) && act is not ("silu" or "swish" or "gelu" or "gelu_pytorch_tanh" or "gelu_new"))
            throw new ModelConfigException(
                $"{r.Source}: {(type.StartsWith("gemma") ? "hidden_activation" : "hidden_act")} \"{act}\" is not supported (expected silu, gelu or gelu_pytorch_tanh).");
        return act;
    }

    /// <summary>Fields whose non-default values this model cannot honour.</summary>
    static void RefuseUnhonoured(Reader r, string type)
    {
        if (r.Double("partial_rotary_factor") is double p && p != 1.0)
            throw new ModelConfigException($"{r.Source}: \"partial_rotary_factor\" {p} is not supported (rotary embedding over the whole head only).");
        if (r.Has("clip_qkv") && r.Double("clip_qkv") is double clip)
            throw new ModelConfigException($"{r.Source}: \"clip_qkv\" {clip} is not supported.");
        if (r.Bool("use_qk_norm") == true || r.Bool("qk_layernorm") == true)
            throw new ModelConfigException($"{r.Source}: \"{(r.Has("use_qk_norm") ? "use_qk_norm" : "qk_layernorm")}\" is not supported for model_type {type}.");
        if (r.Strs("layer_types") is { } lt && lt.FirstOrDefault(x => x is not ("sliding_attention" or "full_attention")) is { } bad)
            throw new ModelConfigException($"{r.Source}: \"layer_types\" holds \"{bad}\" (supported: sliding_attention, full_attention).");
    }

    /// <summary>dynamic, yarn and longrope rope scaling (the other types are read in <see cref="ReadRope"/>).</summary>
    static RopeScaling ReadFamilyRope(Reader r, Reader sr, string kind, string type)
    {
        int maxPos = r.Int("max_position_embeddings") ?? 2048;
        void RefuseOriginal()
        {
            // transformers 4.47 scales from max_position_embeddings; later versions read this field instead.
            if (sr.Int("original_max_position_embeddings") is int o && o != maxPos)
                throw new ModelConfigException(
                    $"{sr.Source}: \"original_max_position_embeddings\" ({o}) differs from max_position_embeddings ({maxPos}) for {kind} scaling; " +
                    "transformers versions disagree on which one applies, so it is not supported.");
        }
        foreach (var k in new[] { "mscale", "mscale_all_dim" })
            if (sr.Has(k)) throw new ModelConfigException($"{sr.Source}: \"{k}\" is not supported.");
        switch (kind)
        {
            case "dynamic":
                RefuseOriginal();
                return new RopeScaling("dynamic", sr.ReqDouble("factor"), OriginalMaxPositions: maxPos);
            case "yarn":
                RefuseOriginal();
                return new RopeScaling("yarn", sr.ReqDouble("factor"), OriginalMaxPositions: maxPos,
                    AttentionFactor: sr.Double("attention_factor"), BetaFast: sr.Double("beta_fast") ?? 32, BetaSlow: sr.Double("beta_slow") ?? 1);
            case "longrope" when type == "phi3":
                int orig = r.Int("original_max_position_embeddings") ?? sr.Int("original_max_position_embeddings")
                    ?? throw new ModelConfigException($"{r.Source}: longrope scaling needs \"original_max_position_embeddings\".");
                var shortF = sr.Doubles("short_factor") ?? throw new ModelConfigException($"{sr.Source}: longrope needs \"short_factor\".");
                var longF = sr.Doubles("long_factor") ?? throw new ModelConfigException($"{sr.Source}: longrope needs \"long_factor\".");
                return new RopeScaling("longrope", (double)maxPos / orig, OriginalMaxPositions: orig, ShortFactor: shortF, LongFactor: longF);
            default:
                throw new ModelConfigException(
                    $"{sr.Source}: rope scaling type \"{kind}\" is not supported for model_type {type} " +
                    $"(supported: default, linear, llama3, dynamic, yarn{(type == "phi3" ? ", longrope" : "")}).");
        }
    }

    /// <summary>The family switches on top of the Llama fields already read.</summary>
    static ModelConfig WithFamilyFeatures(ModelConfig c, Reader r)
    {
        if (c.RopeScaling is { Type: "longrope" } lr && (lr.ShortFactor!.Count != c.HeadDim / 2 || lr.LongFactor!.Count != c.HeadDim / 2))
            throw new ModelConfigException(
                $"{r.Source}: longrope short_factor and long_factor need head_dim / 2 = {c.HeadDim / 2} values each (found {lr.ShortFactor.Count} and {lr.LongFactor!.Count}).");
        c = c.ModelType switch
        {
            "gemma" => c with { NormPlusOne = true, ScaleEmbeddings = true },
            "gemma2" => c with
            {
                NormPlusOne = true, ScaleEmbeddings = true, NormPlacement = NormPlacement.Sandwich,
                QueryPreAttnScalar = r.Double("query_pre_attn_scalar") ?? 256,
                // present-but-null switches a cap off; absent takes transformers' default
                AttnLogitSoftcap = r.Has("attn_logit_softcapping") ? r.Double("attn_logit_softcapping") : 50.0,
                FinalLogitSoftcap = r.Has("final_logit_softcapping") ? r.Double("final_logit_softcapping") : 30.0,
                SlidingWindow = r.Has("sliding_window") ? r.Int("sliding_window") : 4096,
                SlidingLayers = Enumerable.Range(0, c.NumLayers).Where(i => i % 2 == 0).ToArray(),
            },
            "olmo2" => c with { QkNorm = true, NormPlacement = NormPlacement.Post },
            "phi3" => c with { FusedProjections = true, SlidingWindow = r.Int("sliding_window") },
            // transformers applies the window to layers >= max_window_layers (its eager path in 4.47 to every layer)
            "qwen2" when c.SlidingWindow is not null => c with
            {
                SlidingLayers = Enumerable.Range(0, c.NumLayers).Where(i => i >= (r.Int("max_window_layers") ?? 28)).ToArray(),
            },
            _ => c,
        };
        if (r.Strs("layer_types") is { } types && c.SlidingWindow is not null)
        {
            if (types.Count != c.NumLayers)
                throw new ModelConfigException($"{r.Source}: \"layer_types\" has {types.Count} entries for {c.NumLayers} layers.");
            c = c with { SlidingLayers = Enumerable.Range(0, c.NumLayers).Where(i => types[i] == "sliding_attention").ToArray() };
        }
        if (c.AttnLogitSoftcap is <= 0 || c.FinalLogitSoftcap is <= 0)
            throw new ModelConfigException($"{r.Source}: soft-capping values must be positive.");
        if (c.SlidingWindow is <= 0) throw new ModelConfigException($"{r.Source}: \"sliding_window\" must be positive.");
        return c;
    }

    string FamilyArchitecture => ModelType switch
    {
        "gemma" => "GemmaForCausalLM", "gemma2" => "Gemma2ForCausalLM", "olmo2" => "Olmo2ForCausalLM", "phi3" => "Phi3ForCausalLM",
        _ => "LlamaForCausalLM",
    };

    /// <summary>The family fields of config.json (so a model saved here loads in transformers and back here).</summary>
    void AddFamilyJson(JsonObject o)
    {
        if (RopeScaling is { Type: "dynamic" or "yarn" or "longrope" } s)
        {
            var rs = new JsonObject { ["rope_type"] = s.Type, ["type"] = s.Type, ["factor"] = s.Factor };
            if (s.Type == "yarn") { rs["beta_fast"] = s.BetaFast; rs["beta_slow"] = s.BetaSlow; if (s.AttentionFactor is double af) rs["attention_factor"] = af; }
            if (s.Type == "longrope")
            {
                rs.Remove("factor");
                rs["short_factor"] = new JsonArray(s.ShortFactor!.Select(x => (JsonNode)x).ToArray());
                rs["long_factor"] = new JsonArray(s.LongFactor!.Select(x => (JsonNode)x).ToArray());
                o["original_max_position_embeddings"] = s.OriginalMaxPositions;
            }
            o["rope_scaling"] = rs;
        }
        if (ModelType is "gemma" or "gemma2") { o["hidden_activation"] = HiddenAct; o["attention_bias"] = QkvBias; }
        if (ModelType == "gemma2")
        {
            o["query_pre_attn_scalar"] = QueryPreAttnScalar;
            o["attn_logit_softcapping"] = AttnLogitSoftcap;
            o["final_logit_softcapping"] = FinalLogitSoftcap;
            o["sliding_window"] = SlidingWindow;
        }
        if (ModelType == "olmo2") o["attention_bias"] = QkvBias;
        if (ModelType == "qwen2" && SlidingWindow is not null)
            o["max_window_layers"] = SlidingLayers is null ? 0 : SlidingLayers.Count > 0 ? SlidingLayers.Min() : NumLayers;
    }
}

/// <summary>Falcon (model_type falcon) with the new decoder architecture of Falcon-40B/180B: its field names, its checks.</summary>
public sealed partial record ModelConfig
{
    public bool IsFalcon => ModelType == "falcon";
    /// <summary>Falcon: LayerNorms before the parallel attention and MLP: 2 (ln_attn, ln_mlp) or 1 (input_layernorm).</summary>
    public int ParallelNorms { get; init; }

    static ModelConfig ParseFalcon(Reader r)
    {
        int hidden = r.Int("hidden_size") ?? r.ReqInt("n_embed");
        int heads = r.Int("num_attention_heads") ?? r.ReqInt("n_head");
        int layers = r.Int("num_hidden_layers") ?? r.ReqInt("n_layer");
        if (r.Bool("alibi") == true) throw new ModelConfigException($"{r.Source}: \"alibi\": true is not supported (rotary Falcon only).");
        if (r.Bool("new_decoder_architecture") != true)
            throw new ModelConfigException($"{r.Source}: \"new_decoder_architecture\" must be true: only the Falcon-40B/180B layout is supported.");
        if (r.Bool("parallel_attn") == false)
            throw new ModelConfigException($"{r.Source}: \"parallel_attn\": false is not supported with the new decoder architecture.");
        var act = r.Str("activation") ?? "gelu";
        if (act != "gelu") throw new ModelConfigException($"{r.Source}: \"activation\" \"{act}\" is not supported (expected gelu).");
        int norms = r.Int("num_ln_in_parallel_attn") ?? 2;
        if (norms is not (1 or 2)) throw new ModelConfigException($"{r.Source}: \"num_ln_in_parallel_attn\" must be 1 or 2, found {norms}.");
        if (hidden % heads != 0) throw new ModelConfigException($"{r.Source}: hidden_size ({hidden}) is not divisible by num_attention_heads ({heads}).");
        RefuseUnhonoured(r, "falcon");
        var (theta, scaling) = ReadRope(r, "falcon");
        bool bias = r.Bool("bias") ?? false;
        var c = new ModelConfig
        {
            ModelType = "falcon", VocabSize = r.ReqInt("vocab_size"), HiddenSize = hidden, NumLayers = layers, NumHeads = heads,
            NumKvHeads = r.Int("num_kv_heads") ?? heads, HeadDim = hidden / heads, IntermediateSize = r.Int("ffn_hidden_size") ?? 4 * hidden,
            MaxPositions = r.Int("max_position_embeddings") ?? 2048, RopeTheta = theta, RopeScaling = scaling,
            NormEps = r.Double("layer_norm_epsilon") ?? 1e-5, TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? true,
            QkvBias = bias, OutputBias = bias, MlpBias = bias, HiddenAct = "gelu", ParallelNorms = norms,
            TorchDtype = r.Str("torch_dtype") ?? r.Str("dtype") ?? "float32",
            BosTokenId = r.Int("bos_token_id"), EosTokenIds = r.IntOrList("eos_token_id"), PadTokenId = r.Int("pad_token_id"),
        };
        if (c.NumHeads % c.NumKvHeads != 0)
            throw new ModelConfigException($"{r.Source}: num_attention_heads ({heads}) must be a multiple of num_kv_heads ({c.NumKvHeads}).");
        return c;
    }

    JsonObject FalconJson(JsonNode? eos)
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray("FalconForCausalLM"), ["model_type"] = "falcon", ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize, ["num_hidden_layers"] = NumLayers, ["num_attention_heads"] = NumHeads, ["num_kv_heads"] = NumKvHeads,
            ["ffn_hidden_size"] = IntermediateSize, ["max_position_embeddings"] = MaxPositions, ["rope_theta"] = RopeTheta,
            ["layer_norm_epsilon"] = NormEps, ["tie_word_embeddings"] = TieWordEmbeddings, ["bias"] = QkvBias, ["alibi"] = false,
            ["new_decoder_architecture"] = true, ["parallel_attn"] = true, ["num_ln_in_parallel_attn"] = ParallelNorms,
            ["activation"] = "gelu", ["bos_token_id"] = BosTokenId, ["eos_token_id"] = eos, ["pad_token_id"] = PadTokenId,
            ["torch_dtype"] = TorchDtype,
        };
        if (RopeScaling is { Type: "linear" or "dynamic" } s) o["rope_scaling"] = new JsonObject { ["rope_type"] = s.Type, ["type"] = s.Type, ["factor"] = s.Factor };
        return o;
    }

    long FalconParameterCount()
    {
        long h = HiddenSize, v = VocabSize, l = NumLayers, inter = IntermediateSize, kv = (long)NumKvHeads * HeadDim;
        long b = QkvBias ? 1 : 0;
        long attn = h * (h + 2 * kv) + b * (h + 2 * kv) + h * h + b * h;
        long mlp = 2 * h * inter + b * (inter + h);
        return v * h + l * (attn + mlp + ParallelNorms * 2 * h) + 2 * h + (TieWordEmbeddings ? 0 : v * h);
    }
}
