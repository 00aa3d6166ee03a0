using System.Text.Json.Nodes;
using Superficial.IO;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>Thrown when a checkpoint does not fit its config (missing tensor, wrong shape).</summary>
public sealed class CheckpointMismatchException(string message) : Exception(message);

/// <summary>
/// Reads and writes Hugging Face model folders. A parameter whose stored dtype is the compute dtype (on the CPU)
/// reads the checkpoint's bytes in place: the file is mapped copy-on-write and the parameter aliases it, so a BF16
/// checkpoint run in BF16 costs no copy at all. Any other parameter is allocated once, uninitialised, and the
/// memory-mapped tensor copied into it (converting dtype one tensor at a time), so the weights never exist twice in memory.
/// </summary>
public static class ModelLoader
{
    /// <summary>
    /// When set (the command line's --device cuda:0,cuda:1 or auto), every model loaded is split across these devices
    /// by <see cref="DevicePlacement"/> after loading: a process-wide choice, as --device's default device is.
    /// </summary>
    public static DeviceMap? SplitAcross { get; set; }

    /// <summary>Checkpoint tensors that are derived buffers, not weights, in some saved models.</summary>
    static bool IsIgnorable(string name) =>
        name.EndsWith(".rotary_emb.inv_freq") || name.EndsWith(".attn.bias") || name.EndsWith(".attn.masked_bias");

    public static CausalLM Load(string folder, ScalarType? dtype = null, IProgress<LoadProgress>? progress = null)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder not found: {folder}");
        var config = ModelConfig.Load(Path.Combine(folder, "config.json"));
        using var ckpt = Checkpoint.Open(folder);
        CheckpointValidation.BeforeAllocating(folder, config, ckpt);
        var model = CausalLM.Build(config, dtype ?? ScalarType.Float32);
        try
        {
            var names = model.named_parameters().ToList();
            var used = new HashSet<string>();
            long bytes = 0, mapped = 0;
            int done = 0;
            using (no_grad())
                foreach (var (name, param) in names)
                {
                    var source = Resolve(ckpt, name, config) ?? throw new CheckpointMismatchException(
                        $"{folder}: tensor \"{name}\" is missing from the checkpoint (model_type {config.ModelType}, " +
                        $"{ckpt.Names.Count} tensors present).");
                    var entry = ckpt.Entry(source);
                    if (!entry.Shape.SequenceEqual(param.shape))
                        throw new CheckpointMismatchException(
                            $"{ckpt.FileOf(source)}: tensor \"{source}\" has shape [{string.Join(", ", entry.Shape)}], " +
                            $"but config.json implies [{string.Join(", ", param.shape)}].");
                    if (InPlace(ckpt, source, param) is { } alias)
                    {
                        param.set_(alias);   // the parameter now shares the mapped storage; its own empty one is freed
                        alias.Dispose();
                        mapped += entry.ByteLength;
                    }
                    else ckpt.CopyInto(source, param);
                    used.Add(source);
                    bytes += entry.ByteLength;
                    progress?.Report(new LoadProgress(++done, names.Count, bytes));
                }
            CheckpointValidation.NoUnusedTensors(folder, config, ckpt.Names.Where(n => !used.Contains(n) && !IsIgnorable(n)
                && !(config.TieWordEmbeddings && n is "lm_head.weight")).ToList());
            model.SourceFolder = Path.GetFullPath(folder);
            model.MappedBytes = mapped;
            if (SplitAcross is { } map) model.Place(map.Plan(config, model.DType));
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The stored tensor read in place when the parameter keeps its dtype on the CPU; null otherwise.</summary>
    static Tensor? InPlace(Checkpoint ckpt, string name, Tensor param) =>
        param.device.type == TorchSharp.DeviceType.CPU && DTypes.ToTorch(ckpt.Entry(name).DType) == param.dtype ? ckpt.TryMap(name) : null;

    /// <summary>Only the LM head W [vocab, hidden] of a model folder (head training needs nothing else), as float32.</summary>
    public static Tensor LoadLmHead(string folder)
    {
        var config = ModelConfig.Load(Path.Combine(folder, "config.json"));
        using var ckpt = Checkpoint.Open(folder);
        string[] names = config.IsGpt2
            ? (config.TieWordEmbeddings ? ["transformer.wte.weight", "wte.weight"] : ["lm_head.weight"])
            : config.IsFalcon ? (config.TieWordEmbeddings ? ["transformer.word_embeddings.weight"] : ["lm_head.weight"])
            : (config.TieWordEmbeddings ? ["model.embed_tokens.weight"] : ["lm_head.weight"]);
        var name = names.FirstOrDefault(ckpt.Contains) ?? throw new CheckpointMismatchException(
            $"{folder}: the LM head tensor ({string.Join(" or ", names)}) is missing from the checkpoint.");
        var w = ckpt.Load(name, ScalarType.Float32);
        if (w.dim() != 2 || w.shape[0] != config.VocabSize || w.shape[1] != config.HiddenSize)
            throw new CheckpointMismatchException($"{folder}: \"{name}\" is [{string.Join(", ", w.shape)}], expected [{config.VocabSize}, {config.HiddenSize}].");
        return w;
    }

    /// <summary>The checkpoint's name for a parameter (GPT-2 checkpoints may lack the "transformer." prefix).</summary>
    static string? Resolve(Checkpoint ckpt, string name, ModelConfig c)
    {
        if (ckpt.Contains(name)) return name;
        if (c.IsGpt2 && name.StartsWith("transformer.") && ckpt.Contains(name["transformer.".Length..]))
            return name["transformer.".Length..];
        return null;
    }

    public static void Save(CausalLM model, string folder)
    {
        Directory.CreateDirectory(folder);
        var dtypeName = model.DType switch
        {
            ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32",
        };
        (model.Config with { TorchDtype = dtypeName }).Save(Path.Combine(folder, "config.json"));
        var gen = new JsonObject { ["bos_token_id"] = model.Config.BosTokenId, ["pad_token_id"] = model.Config.PadTokenId };
        var eos = model.Config.EosTokenIds;
        gen["eos_token_id"] = eos.Count == 1 ? eos[0] : new JsonArray(eos.Select(e => (JsonNode)e).ToArray());
        AtomicFile.WriteAllText(Path.Combine(folder, "generation_config.json"), gen.ToJsonString(new() { WriteIndented = true }));
        using (no_grad())
            SafeTensorsWriter.WriteCheckpoint(folder,
                model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter.detach())),
                metadata: new Dictionary<string, string> { ["format"] = "pt" });
    }
}
