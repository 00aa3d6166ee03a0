using Superficial.Models;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Evaluation;

/// <summary>
/// Loads each model folder once, shares it between the variants that use it, and frees it when the last
/// of them is done (the runner evaluates variant by variant), so evaluating base, base+head and aligned
/// holds at most the models still needed.
/// </summary>
public sealed class ModelPool(IEnumerable<VariantSpec> specs, ScalarType? dtype = null) : IDisposable
{
    readonly Dictionary<string, int> remaining = specs.GroupBy(s => Path.GetFullPath(s.Model)).ToDictionary(g => g.Key, g => g.Count());
    readonly Dictionary<string, (CausalLM Model, TextTokenizer Tokenizer)> loaded = [];
    readonly object gate = new();

    public Func<string, ScalarType?, CausalLM> Loader { get; init; } = (dir, dt) => CausalLM.Load(dir, dt);

    public (CausalLM Model, TextTokenizer Tokenizer) Acquire(string folder)
    {
        var key = Path.GetFullPath(folder);
        lock (gate)
        {
            if (!loaded.TryGetValue(key, out var entry))
                loaded[key] = entry = (Loader(folder, dtype), TextTokenizer.Load(folder));
            return entry;
        }
    }

    /// <summary>One variant using this folder is done; the model is freed after the last one.</summary>
    public void Release(string folder)
    {
        var key = Path.GetFullPath(folder);
        lock (gate)
        {
            if (!remaining.TryGetValue(key, out var n)) return;
            remaining[key] = --n;
            if (n <= 0 && loaded.Remove(key, out var entry)) entry.Model.Dispose();
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var e in loaded.Values) e.Model.Dispose();
            loaded.Clear();
        }
    }
}
