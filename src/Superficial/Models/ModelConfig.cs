using System.Text.Json;
using System.Text.Json.Nodes;

namespace Superficial.Models;

/// <summary>Thrown when a config.json is missing a field, has a wrong type, or asks for an unsupported feature.</summary>
public sealed class ModelConfigException(string message) : Exception(message);

/// <summary>Rotary position embedding scaling (HF <c>rope_scaling</c> / <c>rope_parameters</c>).</summary>
/// <param name="Type">"linear", "llama3", "dynamic" (NTK by sequence length), "yarn" or "longrope" (Phi-3).</param>
/// <param name="AttentionFactor">yarn / longrope: the factor cos and sin are multiplied by (null = the type's formula).</param>
/// <param name="ShortFactor">longrope: per-frequency divisors up to the original context, and
/// <paramref name="LongFactor"/> beyond it (then <paramref name="OriginalMaxPositions"/> is the original context).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4,
    int OriginalMaxPositions = 8192, double? AttentionFactor = null, double BetaFast = 32, double BetaSlow = 1,
    IReadOnlyList<double>? ShortFactor = null, IReadOnlyList<double>? LongFactor = null);

/// <summary>
/// The architecture of a causal LM as read from a Hugging Face config.json. One record covers the
/// Llama family (llama, mistral, qwen2) and GPT-2; fields that a family does not use keep defaults.
/// </summary>
public sealed partial record ModelConfig
{
    public static readonly IReadOnlyList<string> SupportedTypes = ["llama", "mistral", "qwen2", "gpt2", "gemma", "gemma2", "olmo2", "phi3", "falcon"];

    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public int NumKvHeads { get; init; }
    public int HeadDim { get; init; }
    /// <summary>MLP width (GPT-2: n_inner, default 4 x hidden).</summary>
    public int IntermediateSize { get; init; }
    public int MaxPositions { get; init; } = 2048;
    public double RopeTheta { get; init; } = 10000;
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>RMSNorm (Llama family) or LayerNorm (GPT-2) epsilon.</summary>
    public double NormEps { get; init; } = 1e-6;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Biases on q/k/v projections (Qwen2 always; Llama when attention_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on the attention output projection (Llama attention_bias).</summary>
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    public string HiddenAct { get; init; } = "silu";
    /// <summary>Keys further back than this many positions are not attended (Mistral); null = unlimited.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>The dtype the checkpoint stores ("float32", "bfloat16", "float16").</summary>
    public string TorchDtype { get; init; } = "float32";
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }

    public bool IsGpt2 => ModelType == "gpt2";

    /// <summary>A Llama-family config for models built here (the organism, tests, benchmarks).</summary>
    public static ModelConfig Llama(int vocabSize, int hidden, int layers, int heads, int kvHeads, int intermediate,
        int maxPositions, double ropeTheta = 10000, bool tieWordEmbeddings = true, int? bosId = null, int? eosId = null,
        int? padId = null) => new()
    {
        ModelType = "llama", VocabSize = vocabSize, HiddenSize = hidden, NumLayers = layers, NumHeads = heads,
        NumKvHeads = kvHeads, HeadDim = hidden / heads, IntermediateSize = intermediate, MaxPositions = maxPositions,
        RopeTheta = ropeTheta, TieWordEmbeddings = tieWordEmbeddings, NormEps = 1e-5, BosTokenId = bosId,
        EosTokenIds = eosId is int e ? [e] : [], PadTokenId = padId,
    };

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelConfigException($"{path}: config.json not found.");
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new ModelConfigException($"{path}: not valid JSON ({e.Message})."); }
        if (node is not JsonObject obj) throw new ModelConfigException($"{path}: expected a JSON object.");
        return Parse(obj, path);
    }

    public static ModelConfig Parse(JsonObject o, string source)
    {
        var r = new Reader(o, source);
        var type = r.Str("model_type") ?? throw new ModelConfigException(
            $"{source}: missing \"model_type\" (expected one of {string.Join(", ", SupportedTypes)}).");
        if (!SupportedTypes.Contains(type))
            throw new ModelConfigException(
                $"{source}: model_type \"{type}\" is not supported (supported: {string.Join(", ", SupportedTypes)}).");
        return type == "gpt2" ? ParseGpt2(r) : type == "falcon" ? ParseFalcon(r) : ParseLlama(r, type);
    }

    static ModelConfig ParseLlama(Reader r, string type)
    {
        int hidden = r.ReqInt("hidden_size"), heads = r.ReqInt("num_attention_heads");
        var act = FamilyActivation(r, type);
        if (act != "silu" && act != "swish" && !FamilyTypes.Contains(type))
            throw new ModelConfigException($"{r.Source}: hidden_act \"{act}\" is not supported (expected \"silu\").");
        RefuseUnhonoured(r, type);
        var (theta, scaling) = ReadRope(r, type);
        bool attnBias = r.Bool("attention_bias") ?? false;
        int? window = null;
        if (type == "mistral") window = r.Int("sliding_window");
        if (type == "qwen2" && (r.Bool("use_sliding_window") ?? false)) window = r.Int("sliding_window") ?? 4096;
        var cfg = new ModelConfig
        {
            ModelType = type,
            VocabSize = r.ReqInt("vocab_size"),
            HiddenSize = hidden,
            NumLayers = r.ReqInt("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = r.Int("num_key_value_heads") ?? heads,
            HeadDim = r.Int("head_dim") ?? (type == "gemma" || type == "gemma2" ? 256 : hidden / heads),
            IntermediateSize = r.ReqInt("intermediate_size"),
            MaxPositions = r.Int("max_position_embeddings") ?? 2048,
            RopeTheta = theta,
            RopeScaling = scaling,
            NormEps = r.Double("rms_norm_eps") ?? (type is "olmo2" or "phi3" ? 1e-5 : 1e-6),
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? (type is "gemma" or "gemma2"),
            QkvBias = type == "qwen2" || attnBias,
            OutputBias = type != "qwen2" && attnBias,
            MlpBias = r.Bool("mlp_bias") ?? false,
            HiddenAct = act == "swish" ? "silu" : act,
            SlidingWindow = window,
            TorchDtype = r.Str("torch_dtype") ?? r.Str("dtype") ?? "float32",
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.Int("pad_token_id"),
        };
        if (cfg.NumHeads % cfg.NumKvHeads != 0)
            throw new ModelConfigException(
                $"{r.Source}: num_attention_heads ({cfg.NumHeads}) must be a multiple of num_key_value_heads ({cfg.NumKvHeads}).");
        if (r.Int("head_dim") is null && hidden % heads != 0)
            throw new ModelConfigException($"{r.Source}: hidden_size ({hidden}) is not divisible by num_attention_heads ({heads}); give head_dim.");
        if (cfg.HeadDim % 2 != 0) throw new ModelConfigException($"{r.Source}: head_dim ({cfg.HeadDim}) must be even for rotary embeddings.");
        return WithFamilyFeatures(cfg, r);
    }

    /// <summary>rope_theta / rope_scaling (transformers 4) or rope_parameters (transformers 5).</summary>
    static (double, RopeScaling?) ReadRope(Reader r, string type = "llama")
    {
        var p = r.Obj("rope_parameters");
        var s = r.Obj("rope_scaling");
        double theta = r.Double("rope_theta") ?? 10000;
        if (p is not null)
        {
            var pr = new Reader(p, r.Source + " rope_parameters");
            theta = pr.Double("rope_theta") ?? theta;
            s ??= p;
        }
        if (s is null) return (theta, null);
        var sr = new Reader(s, r.Source + (p is not null ? " rope_parameters" : " rope_scaling"));
        var kind = sr.Str("rope_type") ?? sr.Str("type") ?? "default";
        switch (kind)
        {
            case "default": return (theta, null);
            case "linear": return (theta, new RopeScaling("linear", sr.ReqDouble("factor")));
            case "llama3":
                return (theta, new RopeScaling("llama3", sr.ReqDouble("factor"), sr.Double("low_freq_factor") ?? 1,
                    sr.Double("high_freq_factor") ?? 4, sr.Int("original_max_position_embeddings") ?? 8192));
            default:
                return (theta, ReadFamilyRope(r, sr, kind, type));
        }
    }

    static ModelConfig ParseGpt2(Reader r)
    {
        int hidden = r.ReqInt("n_embd"), heads = r.ReqInt("n_head");
        var act = r.Str("activation_function") ?? "gelu_new";
        if (act is not ("gelu_new" or "gelu" or "gelu_pytorch_tanh"))
            throw new ModelConfigException($"{r.Source}: activation_function \"{act}\" is not supported (expected gelu_new or gelu).");
        if (hidden % heads != 0) throw new ModelConfigException($"{r.Source}: n_embd ({hidden}) is not divisible by n_head ({heads}).");
        return new ModelConfig
        {
            ModelType = "gpt2",
            VocabSize = r.ReqInt("vocab_size"),
            HiddenSize = hidden,
            NumLayers = r.ReqInt("n_layer"),
            NumHeads = heads,
            NumKvHeads = heads,
            HeadDim = hidden / heads,
            IntermediateSize = r.Int("n_inner") ?? 4 * hidden,
            MaxPositions = r.ReqInt("n_positions"),
            NormEps = r.Double("layer_norm_epsilon") ?? 1e-5,
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? true,
            QkvBias = true, OutputBias = true, MlpBias = true,
            HiddenAct = act,
            TorchDtype = r.Str("torch_dtype") ?? r.Str("dtype") ?? "float32",
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.Int("pad_token_id"),
        };
    }

    /// <summary>The config.json HF transformers writes for this architecture (round-trips through <see cref="Parse"/>).</summary>
    public JsonObject ToJson()
    {
        JsonNode? eos = EosTokenIds.Count switch { 0 => null, 1 => EosTokenIds[0], _ => new JsonArray(EosTokenIds.Select(e => (JsonNode)e).ToArray()) };
        if (IsFalcon) return FalconJson(eos);
        if (IsGpt2)
            return new JsonObject
            {
                ["architectures"] = new JsonArray("GPT2LMHeadModel"), ["model_type"] = "gpt2",
                ["vocab_size"] = VocabSize, ["n_embd"] = HiddenSize, ["n_layer"] = NumLayers, ["n_head"] = NumHeads,
                ["n_inner"] = IntermediateSize, ["n_positions"] = MaxPositions, ["layer_norm_epsilon"] = NormEps,
                ["activation_function"] = HiddenAct, ["tie_word_embeddings"] = TieWordEmbeddings,
                ["bos_token_id"] = BosTokenId, ["eos_token_id"] = eos, ["pad_token_id"] = PadTokenId,
                ["torch_dtype"] = TorchDtype,
            };
        var arch = ModelType switch
        {
            "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", "llama" => "LlamaForCausalLM", _ => FamilyArchitecture,
        };
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(arch), ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize, ["hidden_size"] = HiddenSize, ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads, ["num_key_value_heads"] = NumKvHeads, ["head_dim"] = HeadDim,
            ["intermediate_size"] = IntermediateSize, ["max_position_embeddings"] = MaxPositions,
            ["rope_theta"] = RopeTheta, ["rms_norm_eps"] = NormEps, ["tie_word_embeddings"] = TieWordEmbeddings,
            ["hidden_act"] = HiddenAct, ["mlp_bias"] = MlpBias,
            ["bos_token_id"] = BosTokenId, ["eos_token_id"] = eos, ["pad_token_id"] = PadTokenId,
            ["torch_dtype"] = TorchDtype,
        };
        if (ModelType == "llama") o["attention_bias"] = QkvBias;
        if (RopeScaling is { Type: not ("linear" or "llama3") }) { }
        else if (RopeScaling is { } s)
            o["rope_scaling"] = s.Type == "linear"
                ? new JsonObject { ["rope_type"] = "linear", ["factor"] = s.Factor }
                : new JsonObject
                {
                    ["rope_type"] = "llama3", ["factor"] = s.Factor, ["low_freq_factor"] = s.LowFreqFactor,
                    ["high_freq_factor"] = s.HighFreqFactor, ["original_max_position_embeddings"] = s.OriginalMaxPositions,
                };
        if (SlidingWindow is int w) { o["sliding_window"] = w; if (ModelType == "qwen2") o["use_sliding_window"] = true; }
        AddFamilyJson(o);
        return o;
    }

    public void Save(string path) =>
        Superficial.IO.AtomicFile.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public long ParameterCount()
    {
        long h = HiddenSize, v = VocabSize, l = NumLayers, inter = IntermediateSize;
        if (IsFalcon) return FalconParameterCount();
        if (IsGpt2)
            return v * h + (long)MaxPositions * h + l * (4 * h + 3 * h * h + 3 * h + h * h + h + 2 * h * inter + inter + h) + 2 * h
                   + (TieWordEmbeddings ? 0 : v * h);
        long q = (long)NumHeads * HeadDim, kv = (long)NumKvHeads * HeadDim;
        long attn = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0) + (QkNorm ? q + kv : 0);
        long mlp = 3 * h * inter + (MlpBias ? 2 * inter + h : 0);
        long norms = NormPlacement == NormPlacement.Sandwich ? 4 * h : 2 * h;
        return v * h + l * (attn + mlp + norms) + h + (TieWordEmbeddings ? 0 : v * h);
    }

    /// <summary>Typed access to config fields with errors that name the file and field.</summary>
    sealed class Reader(JsonObject o, string source)
    {
        public string Source => source;
        /// <summary>Whether the key is present at all (a JSON null counts: it means "off" for some fields).</summary>
        public bool Has(string k) => o.ContainsKey(k);
        public IReadOnlyList<double>? Doubles(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            if (v is not JsonArray a) throw Bad(k, "a list of numbers", v);
            return a.Select(x => x is JsonValue xv && xv.TryGetValue(out double d) ? d
                : x is JsonValue xi && xi.TryGetValue(out long l) ? l : throw Bad(k, "a list of numbers", v)).ToArray();
        }
        public IReadOnlyList<string>? Strs(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            if (v is not JsonArray a) throw Bad(k, "a list of strings", v);
            return a.Select(x => x is JsonValue xv && xv.TryGetValue(out string? s) ? s : throw Bad(k, "a list of strings", v)).ToArray();
        }
        JsonNode? Get(string k) => o.TryGetPropertyValue(k, out var v) ? v : null;
        ModelConfigException Bad(string k, string expected, JsonNode? v) =>
            new($"{source}: field \"{k}\" should be {expected}, found {v?.ToJsonString() ?? "null"}.");

        public int? Int(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            if (v is JsonValue ji && ji.TryGetValue(out int i)) return i;
            if (v is JsonValue jv && jv.TryGetValue(out long l) && l is >= int.MinValue and <= int.MaxValue) return (int)l;
            if (v is JsonValue jd && jd.TryGetValue(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
            throw Bad(k, "an integer", v);
        }
        public int ReqInt(string k) => Int(k) ?? throw new ModelConfigException($"{source}: missing required field \"{k}\" (an integer).");
        public double? Double(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            if (v is JsonValue jv && jv.TryGetValue(out double d)) return d;
            if (v is JsonValue ji && ji.TryGetValue(out int i)) return i;
            if (v is JsonValue jl && jl.TryGetValue(out long l)) return l;
            throw Bad(k, "a number", v);
        }
        public double ReqDouble(string k) => Double(k) ?? throw new ModelConfigException($"{source}: missing required field \"{k}\" (a number).");
        public bool? Bool(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            if (v is JsonValue jv && jv.TryGetValue(out bool b)) return b;
            throw Bad(k, "true or false", v);
        }
        public string? Str(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            if (v is JsonValue jv && jv.TryGetValue(out string? s)) return s;
            throw Bad(k, "a string", v);
        }
        public JsonObject? Obj(string k)
        {
            var v = Get(k);
            if (v is null) return null;
            return v as JsonObject ?? throw Bad(k, "an object", v);
        }
        public IReadOnlyList<int> IntOrList(string k)
        {
            var v = Get(k);
            if (v is null) return [];
            if (v is JsonArray a)
                return a.Select(x => x is JsonValue xv && (xv.TryGetValue(out int i) || xv.TryGetValue(out long _) && (i = (int)xv.GetValue<long>()) == i)
                    ? i : throw Bad(k, "an integer or a list of integers", v)).ToArray();
            return [Int(k)!.Value];
        }
    }
}
