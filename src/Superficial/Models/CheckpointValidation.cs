using Superficial.Tensors;

namespace Superficial.Models;

/// <summary>
/// Checks a config.json against its checkpoint before the model is built, so a wrong or hostile config
/// fails with a message instead of hanging or attempting a terabyte allocation (a million layers, a
/// hidden size of 1e9), and after loading, so checkpoint tensors the config does not use (e.g.
/// num_hidden_layers 0 beside 18 layers of weights) are an error rather than silently ignored.
/// </summary>
public static class CheckpointValidation
{
    /// <summary>Upper bounds far above any real model, below which the size arithmetic cannot overflow.</summary>
    const int MaxVocab = 1 << 24, MaxHidden = 1 << 17, MaxLayers = 1 << 12, MaxHeads = 1 << 12, MaxIntermediate = 1 << 20, MaxPositions = 1 << 24;

    /// <summary>Refuses sizes that are not positive or absurdly large, and a config whose parameter count exceeds what the checkpoint holds.</summary>
    public static void BeforeAllocating(string folder, ModelConfig c, Checkpoint ckpt)
    {
        var config = Path.Combine(folder, "config.json");
        Range(config, "vocab_size", c.VocabSize, MaxVocab);
        Range(config, "hidden_size", c.HiddenSize, MaxHidden);
        Range(config, "num_hidden_layers", c.NumLayers, MaxLayers, allowZero: true);
        Range(config, "num_attention_heads", c.NumHeads, MaxHeads);
        Range(config, "num_key_value_heads", c.NumKvHeads, MaxHeads);
        Range(config, "head_dim", c.HeadDim, MaxHidden);
        Range(config, "intermediate_size", c.IntermediateSize, MaxIntermediate);
        Range(config, "max_position_embeddings", c.MaxPositions, MaxPositions);
        long need = c.ParameterCount();
        long have = ckpt.Names.Sum(n => ckpt.Entry(n).Shape.Aggregate(1L, (a, d) => a * d));
        // Slack for families whose count is approximate; a real mismatch still fails below on a missing tensor.
        if (need > have + have / 8)
            throw new CheckpointMismatchException(
                $"{config} describes a model of {need:N0} parameters ({c.NumLayers} layers, hidden {c.HiddenSize}, vocabulary {c.VocabSize}, " +
                $"MLP {c.IntermediateSize}), but the checkpoint in {folder} holds only {have:N0} values: config.json does not belong to these weights.");
    }

    /// <summary>Refuses a load that left checkpoint tensors unused: the config describes a different (smaller) model than the weights.</summary>
    public static void NoUnusedTensors(string folder, ModelConfig c, IReadOnlyList<string> unused)
    {
        if (unused.Count == 0) return;
        var shown = unused.Order(StringComparer.Ordinal).Take(12).Select(n => $"\"{n}\"");
        throw new CheckpointMismatchException(
            $"{folder}: {unused.Count} checkpoint tensor(s) are not used by the model config.json describes " +
            $"(model_type {c.ModelType}, {c.NumLayers} layers): {string.Join(", ", shown)}{(unused.Count > 12 ? ", ..." : "")}. " +
            "Check num_hidden_layers and the other sizes in config.json.");
    }

    /// <summary>For config parsing: sizes it divides by must be positive (else a DivideByZeroException would name nothing).</summary>
    public static void Positive(string source, params (string Field, int Value)[] fields)
    {
        foreach (var (field, value) in fields)
            if (value < 1) throw new ModelConfigException($"{source}: {field} = {value} must be at least 1.");
    }

    static void Range(string config, string field, long value, long max, bool allowZero = false)
    {
        if (value < (allowZero ? 0 : 1) || value > max)
            throw new ModelConfigException($"{config}: {field} = {value} is out of range (expected {(allowZero ? 0 : 1)} to {max:N0}).");
    }
}
