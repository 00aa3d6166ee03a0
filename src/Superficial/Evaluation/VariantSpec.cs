using Superficial.IO;
using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Evaluation;

/// <summary>One variant to evaluate: a model folder, raw or chat prompts, and how a head is applied (if at all).</summary>
public sealed record VariantSpec(string Name, string Model, bool Chat, SteeringRequest Steering, string? ChatTemplate = null)
{
    /// <summary>
    /// A fingerprint of what this variant computes: model folders by <see cref="ModelIdentity"/>, head files
    /// by their SHA-256, the prompt form and the steering settings (see <see cref="IModelVariant.Identity"/>).
    /// </summary>
    public string Identity()
    {
        static string? Folder(string? dir) => dir is null ? null : ModelIdentity.Of(dir);
        static string? File(string? path) => path is null ? null
            : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.IO.File.ReadAllBytes(path)));
        var s = Steering;
        return new System.Text.Json.Nodes.JsonObject
        {
            ["model"] = Folder(Model), ["chat"] = Chat, ["chat_template"] = ChatTemplate,
            ["head"] = File(s.Head), ["transfer_from"] = Folder(s.TransferFrom), ["transfer_mode"] = s.TransferFrom is null ? null : s.TransferMode.Name(),
            ["recover_with"] = File(s.RecoverWith), ["via_base"] = Folder(s.ViaBase),
            ["via_base_reads"] = s.ViaBase is null ? null : s.ViaBaseReads.Name(),
            ["alpha"] = s.IsEmpty ? null : s.Alpha,
        }.ToJsonString();
    }
}

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

/// <summary>An <see cref="IModelVariant"/> whose model (and head, side model) are loaded on first use and released when disposed.</summary>
public sealed class LazyModelVariant(VariantSpec spec, ModelPool pool, int batchSize = 8) : IModelVariant, IDisposable
{
    ModelVariant? inner;
    Steering? steering;
    bool released;

    public string Name => spec.Name;
    public bool UsesChatTemplate => spec.Chat;
    public string? Identity => identity ??= spec.Identity();
    string? identity;

    ModelVariant Inner()
    {
        if (inner is not null) return inner;
        if (released) throw new InvalidOperationException($"variant {spec.Name} was already released.");
        var (model, tok) = pool.Acquire(spec.Model);
        steering = Steering.Build(model, tok, spec.Steering);
        var chat = spec.Chat ? tok.GetChatTemplate(spec.ChatTemplate) : null;
        inner = new ModelVariant(spec.Name, model, tok, chat, steering.Transform, batchSize);
        return inner;
    }

    public string RenderPrompt(PromptSpec prompt) => Inner().RenderPrompt(prompt);

    public IReadOnlyList<string> Generate(IReadOnlyList<PromptSpec> prompts, int maxNewTokens, IReadOnlyList<string> stopStrings,
        IProgress<int>? progress = null, CancellationToken ct = default) => Inner().Generate(prompts, maxNewTokens, stopStrings, progress, ct);

    public IReadOnlyList<double> LogLikelihood(IReadOnlyList<(PromptSpec Prompt, string Continuation)> requests,
        IProgress<int>? progress = null, CancellationToken ct = default) => Inner().LogLikelihood(requests, progress, ct);

    public void Dispose()
    {
        if (released) return;
        released = true;
        steering?.Dispose();
        inner = null;
        pool.Release(spec.Model);
    }
}
