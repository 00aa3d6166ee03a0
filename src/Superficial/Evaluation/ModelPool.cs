using Superficial.Models;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Evaluation;

/// <summary>
/// Loads each model folder once, shares it between the variants that use it, and frees it when the last
/// of them is done (the runner evaluates variant by variant), so evaluating base, base+head and aligned
/// holds at most the models still needed. With a memory budget, a model no running variant holds is also freed
/// when the next model would not fit beside it (and loaded again if a later variant needs it): two 7B models
/// never sit side by side in a budget that holds one. A variant whose own model and side models (transfer's small
/// base, recovery's original base) exceed a given budget is refused before anything loads.
/// </summary>
public sealed class ModelPool : IDisposable
{
    readonly Dictionary<string, int> remaining;
    readonly Dictionary<string, int> active = [];
    readonly List<(string Key, CausalLM Model, TextTokenizer Tokenizer, long Bytes)> loaded = [];
    readonly object gate = new();
    readonly ScalarType? dtype;
    readonly long? budget;

    /// <param name="maxMemory">Bytes the models may take at once (null: no limit, idle models stay until their last variant).</param>
    /// <param name="sizeOf">Bytes a model folder takes when loaded (default: its parameters in the compute dtype, from config.json).</param>
    public ModelPool(IEnumerable<VariantSpec> specs, ScalarType? dtype = null, long? maxMemory = null, Func<string, long>? sizeOf = null)
    {
        var list = specs.ToList();
        this.dtype = dtype;
        budget = maxMemory;
        SizeOf = sizeOf ?? (dir => ModelBytes(dir, dtype));
        remaining = list.GroupBy(s => Path.GetFullPath(s.Model)).ToDictionary(g => g.Key, g => g.Count());
        if (budget is long b)
            foreach (var s in list)
            {
                long need = SizeOf(s.Model) + SideModels(s).Sum(SizeOf);
                if (need > b)
                    throw new InvalidOperationException(
                        $"variant {s.Name} needs {Gb(need)} of weights ({string.Join(" + ", new[] { s.Model }.Concat(SideModels(s)).Select(m => $"{m} {Gb(SizeOf(m))}"))}), " +
                        $"more than the memory budget {Gb(b)}. Raise --max-memory, or use --dtype bfloat16.");
            }
    }

    public Func<string, ScalarType?, CausalLM> Loader { get; init; } = (dir, dt) => CausalLM.Load(dir, dt);
    Func<string, long> SizeOf { get; }

    /// <summary>The folders whose models are loaded now (full paths, in loading order).</summary>
    public IReadOnlyList<string> Loaded { get { lock (gate) return loaded.Select(e => e.Key).ToArray(); } }

    /// <summary>Models loaded so far (loads again after an eviction included): what the budget costs in loading time.</summary>
    public int Loads { get; private set; }

    /// <summary>The models a variant's steering loads beside its own (not shared through the pool).</summary>
    static IEnumerable<string> SideModels(VariantSpec s) =>
        new[] { s.Steering.TransferFrom, s.Steering.ViaBase }.Where(m => m is not null).Select(m => m!);

    /// <summary>Parameters x element size of the compute dtype (the checkpoint's own when mapped in place: same bytes).</summary>
    public static long ModelBytes(string folder, ScalarType? dtype)
    {
        var config = ModelConfig.Load(Path.Combine(folder, "config.json"));
        long elem = (dtype ?? ScalarType.Float32) == ScalarType.Float32 ? 4 : 2;
        return config.ParameterCount() * elem;
    }

    static string Gb(long bytes) => bytes >= 1e9 ? $"{bytes / 1e9:0.##} GB" : bytes >= 1e6 ? $"{bytes / 1e6:0.#} MB" : $"{bytes} bytes";

    public (CausalLM Model, TextTokenizer Tokenizer) Acquire(string folder) => Acquire(folder, 0);

    /// <summary>The variant's model, loaded if needed (within the budget, counting its side models too); held until <see cref="Release"/>.</summary>
    public (CausalLM Model, TextTokenizer Tokenizer) Acquire(VariantSpec spec) => Acquire(spec.Model, budget is null ? 0 : SideModels(spec).Sum(SizeOf));

    (CausalLM Model, TextTokenizer Tokenizer) Acquire(string folder, long sideBytes)
    {
        var key = Path.GetFullPath(folder);
        lock (gate)
        {
            int i = loaded.FindIndex(e => e.Key == key);
            if (i < 0)
            {
                long bytes = budget is null ? 0 : SizeOf(folder);
                if (budget is long b)
                    // free models no running variant holds, oldest first, until this one (and its side models) fits
                    while (loaded.Sum(e => e.Bytes) + bytes + sideBytes > b && loaded.FindIndex(e => active.GetValueOrDefault(e.Key) == 0) is int idle and >= 0)
                    {
                        loaded[idle].Model.Dispose();
                        loaded.RemoveAt(idle);
                    }
                loaded.Add((key, Loader(folder, dtype), TextTokenizer.Load(folder), bytes));
                Loads++;
                i = loaded.Count - 1;
            }
            active[key] = active.GetValueOrDefault(key) + 1;
            return (loaded[i].Model, loaded[i].Tokenizer);
        }
    }

    /// <summary>One variant using this folder is done (<paramref name="acquired"/>: it had acquired the model); the model is freed after the last one.</summary>
    public void Release(string folder, bool acquired = true)
    {
        var key = Path.GetFullPath(folder);
        lock (gate)
        {
            if (acquired && active.TryGetValue(key, out var a)) active[key] = Math.Max(0, a - 1);
            if (!remaining.TryGetValue(key, out var n)) return;
            remaining[key] = --n;
            int i = loaded.FindIndex(e => e.Key == key);
            if (n <= 0 && i >= 0)
            {
                loaded[i].Model.Dispose();
                loaded.RemoveAt(i);
            }
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var e in loaded) e.Model.Dispose();
            loaded.Clear();
        }
    }
}
