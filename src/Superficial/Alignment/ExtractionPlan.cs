using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>
/// How an extraction uses its memory budget: the batch (prompts decoded together) and whether the base and aligned
/// models are held together or one at a time per chunk. Chosen from sizes alone (configs, dtype, prompt lengths), so
/// it is decided, and said, before any model loads.
/// </summary>
public sealed record ExtractionPlan(int Batch, bool Together, long Budget, long BaseBytes, long AlignedBytes, long BytesPerPrompt, bool BatchGiven)
{
    /// <summary>Where the budget came from: "given" (--max-memory) or the share of which device's free memory.</summary>
    public string BudgetFrom { get; init; } = "the given maximum";

    /// <summary>Most prompts decoded together when the batch comes from the budget (beyond it CPU decoding gains little).</summary>
    public const int MaxAutoBatch = 64;

    internal static ExtractionPlan Choose(ModelConfig baseConfig, ModelConfig alignedConfig, (IReadOnlyList<int>[] Raw, IReadOnlyList<int>[] Chat) encoded,
        IReadOnlyList<int> todoChunks, ExtractionOptions o, int promptCount, IReadOnlyList<string>? devices = null, Func<string, long>? freeBytes = null)
    {
        var dtype = o.Dtype ?? ScalarType.Float32;
        long elem = dtype == ScalarType.Float32 ? 4 : 2;
        long wb = baseConfig.ParameterCount() * elem, wa = alignedConfig.ParameterCount() * elem;
        int longestChat = encoded.Chat.Max(c => c.Count), longestRaw = encoded.Raw.Max(r => r.Count);
        // the aligned model's KV cache and top-k buffers, and the base model's teacher-forced activations
        // (one token's layer activations and attention row, for every token of prompt + answer)
        long tokens = longestRaw + o.MaxNewTokens;
        long perPrompt = ExtractionDecoder.BytesPerSlot(alignedConfig, dtype, longestChat, o.MaxNewTokens, o.TopK)
                         + tokens * ((baseConfig.HiddenSize * 6L + baseConfig.IntermediateSize * 3L) * 4 + baseConfig.NumHeads * tokens * 4L);
        // without --max-memory: the free memory of the devices the models are loaded onto (a GPU's, not the host's)
        var (budget, from) = o.MaxMemory is { } given ? (given, "the given maximum") : DeviceMemory.DefaultBudget(devices ?? DeviceMemory.ModelDevices(), freeBytes);
        bool together = wa + wb + perPrompt <= budget;
        if (!together && Math.Max(wa, wb) + perPrompt > budget)
            throw new InvalidOperationException(
                $"extraction needs at least {Gb(Math.Max(wa, wb) + perPrompt)} (the larger model {Gb(Math.Max(wa, wb))} in {dtype} and one prompt's " +
                $"{Gb(perPrompt)}), more than the memory budget {Gb(budget)}. Raise `MaxMemory`, use `Dtype` bfloat16, or lower `MaxNewTokens`.");
        long room = budget - (together ? wa + wb : Math.Max(wa, wb));
        int todoPrompts = todoChunks.Sum(c => Math.Min(o.ChunkSize, promptCount - c * o.ChunkSize));
        int batch = o.BatchSize ?? (int)Math.Clamp(room / perPrompt, 1, MaxAutoBatch);
        batch = Math.Max(1, Math.Min(batch, together ? todoPrompts : Math.Min(o.ChunkSize, todoPrompts)));
        return new ExtractionPlan(batch, together, budget, wb, wa, perPrompt, o.BatchSize is not null) { BudgetFrom = from };
    }

    static string Gb(long bytes) => bytes >= 1e9 ? $"{bytes / 1e9:0.##} GB" : $"{bytes / 1e6:0.#} MB";

    /// <summary>The log line: batch, where it came from, and whether the models run together or one at a time.</summary>
    public string Describe() =>
        $"extract: batch {Batch} ({(BatchGiven ? "given" : $"from the memory budget {Gb(Budget)}, {BudgetFrom}: {Gb(BytesPerPrompt)} per prompt")}); " +
        (Together
            ? $"base ({Gb(BaseBytes)}) and aligned ({Gb(AlignedBytes)}) held together"
            : $"base ({Gb(BaseBytes)}) and aligned ({Gb(AlignedBytes)}) do not both fit in {Gb(Budget)}{(BatchGiven ? $" ({BudgetFrom})" : "")}: one at a time per chunk " +
              "(the aligned model generates a chunk, then the base model reads it)");
}
