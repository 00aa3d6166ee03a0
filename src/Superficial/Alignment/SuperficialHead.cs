using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Models;
using Superficial.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>Thrown when a head file is malformed or does not fit the model it is applied to.</summary>
public sealed class HeadException(string message) : Exception(message);

/// <summary>
/// The superficial head: a linear map A (hidden x hidden, no bias) so that a base model with final hidden
/// state h and LM head W produces <c>W (h + A h)</c>. Full rank owns the parameter A; low rank owns U [H, r]
/// and V [r, H] with A = U V. Its forward is the delta A h (<see cref="Delta"/>). Saved as safetensors with
/// metadata naming the base model it was trained on.
/// </summary>
public sealed class SuperficialHead : nn.Module<Tensor, Tensor>
{
    public const string Format = "superficial-head";

    /// <summary>Full-rank map [H, H], or null for a low-rank head.</summary>
    public Parameter? A { get; }
    public Parameter? U { get; }
    public Parameter? V { get; }
    public int HiddenSize { get; }
    public int VocabSize { get; }
    /// <summary>Identity of the base model the head was trained on (see <see cref="ModelIdentity"/>).</summary>
    public string BaseModel { get; init; } = "";
    /// <summary>The file the head was loaded from, or null for a head made in memory.</summary>
    public string? SourcePath { get; init; }
    /// <summary>Training data, settings and final metrics, as JSON.</summary>
    public JsonObject Info { get; init; } = new();

    public int? Rank => U is null ? null : (int)U.shape[1];

    /// <summary>The parameters in a fixed order: A, or U then V.</summary>
    public IReadOnlyList<Parameter> Weights => A is not null ? [A] : [U!, V!];

    /// <summary>A full-rank head owning <paramref name="a"/>'s values (the tensor itself stays the caller's).</summary>
    /// <param name="trainable">Whether the parameters require gradients (training); a head that is only applied does not.</param>
    public SuperficialHead(Tensor a, int vocabSize, bool trainable = false) : base(nameof(SuperficialHead))
    {
        if (a.dim() != 2 || a.shape[0] != a.shape[1]) throw new HeadException($"A must be square, got [{string.Join(", ", a.shape)}].");
        A = Own("A", a, trainable); HiddenSize = (int)a.shape[0]; VocabSize = vocabSize;
    }

    /// <summary>A low-rank head A = U V owning the values of <paramref name="u"/> [H, r] and <paramref name="v"/> [r, H].</summary>
    public SuperficialHead(Tensor u, Tensor v, int vocabSize, bool trainable = false) : base(nameof(SuperficialHead))
    {
        if (u.dim() != 2 || v.dim() != 2 || u.shape[1] != v.shape[0] || u.shape[0] != v.shape[1])
            throw new HeadException($"U [H, r] and V [r, H] do not fit: U [{string.Join(", ", u.shape)}], V [{string.Join(", ", v.shape)}].");
        U = Own("U", u, trainable); V = Own("V", v, trainable); HiddenSize = (int)u.shape[0]; VocabSize = vocabSize;
    }

    Parameter Own(string name, Tensor t, bool trainable)
    {
        var p = new Parameter(t.detach(), trainable);
        p.DetachFromDisposeScope();   // the head owns it, whatever scope it was made in
        register_parameter(name, p);
        return p;
    }

    /// <summary>The zero head: applying it leaves the base model exactly unchanged.</summary>
    public static SuperficialHead Zero(int hidden, int vocab) => new(zeros(hidden, hidden), vocab);

    /// <summary>
    /// The head training starts from (trainable): full rank, or rank <paramref name="rank"/>; <see cref="HeadInit.Zero"/>
    /// makes A (or U) zero, <see cref="HeadInit.Random"/> draws uniformly in ±1/√fan-in from <paramref name="generator"/>
    /// (V is always drawn so, after U).
    /// </summary>
    public static SuperficialHead Initial(int hidden, int vocab, int? rank, HeadInit init, torch.Generator generator)
    {
        if (!Enum.IsDefined(init)) throw new ArgumentOutOfRangeException(nameof(init), init, null);
        using var scope = NewDisposeScope();
        if (rank is int r)
        {
            if (r < 1 || r > hidden) throw new ArgumentOutOfRangeException(nameof(rank), r, $"the rank must be between 1 and the hidden size {hidden}.");
            var u = init == HeadInit.Zero ? zeros(hidden, r) : (rand(hidden, r, generator: generator) * 2 - 1) / Math.Sqrt(r);
            var v = (rand(r, hidden, generator: generator) * 2 - 1) / Math.Sqrt(hidden);
            return new SuperficialHead(u, v, vocab, trainable: true);
        }
        return new SuperficialHead(init == HeadInit.Zero ? zeros(hidden, hidden) : (rand(hidden, hidden, generator: generator) * 2 - 1) / Math.Sqrt(hidden),
            vocab, trainable: true);
    }

    /// <summary>A copy of the current values, not trainable, with the given record of where it came from.</summary>
    public SuperficialHead Snapshot(string baseModel, JsonObject info)
    {
        using var noGrad = no_grad();
        return A is not null
            ? new SuperficialHead(A.clone(), VocabSize) { BaseModel = baseModel, Info = info }
            : new SuperficialHead(U!.clone(), V!.clone(), VocabSize) { BaseModel = baseModel, Info = info };
    }

    /// <summary>A h for row vectors h [N, H] (i.e. h A^T).</summary>
    public Tensor Delta(Tensor h)
    {
        using var scope = NewDisposeScope();
        var hf = h.to_type(ScalarType.Float32);
        var d = A is not null ? hf.matmul(A.to(h.device).t()) : hf.matmul(V!.to(h.device).t()).matmul(U!.to(h.device).t());
        return d.to_type(h.dtype).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor h) => Delta(h);

    /// <summary>Throws unless the head fits a model with this hidden size and vocabulary.</summary>
    public void CheckFits(CausalLM model, string role = "model")
    {
        if (model.HiddenSize != HiddenSize)
            throw new HeadException($"the head was trained for hidden size {HiddenSize}, but the {role} has hidden size {model.HiddenSize}" +
                (model.SourceFolder is null ? "." : $" ({model.SourceFolder})."));
        if (model.VocabSize != VocabSize)
            throw new HeadException($"the head was trained for a vocabulary of {VocabSize}, but the {role} has {model.VocabSize}" +
                (model.SourceFolder is null ? "." : $" ({model.SourceFolder})."));
    }

    /// <summary>
    /// Throws unless <paramref name="folder"/> holds the base model the head was trained on (same
    /// <see cref="ModelIdentity"/>), since a head applied to another model of the same shape would run silently.
    /// <paramref name="allowOther"/> (<see cref="SteeringRequest.AllowOtherBase"/>) permits a deliberate transfer to another model.
    /// </summary>
    public void CheckBase(string? folder, string role, bool allowOther)
    {
        if (allowOther || folder is null) return;
        var identity = ModelIdentity.Of(folder);
        if (identity == BaseModel) return;
        var what = SourcePath ?? "the head";
        throw new HeadException(BaseModel.Length == 0
            ? $"{what} does not record the base model it was trained on, so it cannot be checked against the {role} ({folder}, identity {identity}); " +
              "set `AllowOtherBase` to apply it anyway."
            : $"{what} was trained on base model {BaseModel}, but the {role} ({folder}) has identity {identity}: a different model " +
              "(or other weights, config or tokenizer). Applying a head to another model is a transfer; set `AllowOtherBase` to do it deliberately.");
    }

    public void Save(string path)
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format, ["version"] = "1", ["hidden_size"] = HiddenSize.ToString(), ["vocab_size"] = VocabSize.ToString(),
            ["rank"] = Rank?.ToString() ?? "full", ["base_model"] = BaseModel, ["info"] = Info.ToJsonString(),
        };
        using var scope = NewDisposeScope();
        SafeTensorsWriter.Write(path, Tensors(), meta);
    }

    public static SuperficialHead Load(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        using var scope = NewDisposeScope();   // the loaded tensors; the head's parameters share their storage
        string Meta(string k) => f.Metadata.TryGetValue(k, out var v) ? v
            : throw new HeadException($"{path}: not a superficial head file (metadata \"{k}\" missing).");
        if (Meta("format") != Format) throw new HeadException($"{path}: metadata format is \"{Meta("format")}\", expected \"{Format}\".");
        if (!int.TryParse(Meta("vocab_size"), out var vocab) || !int.TryParse(Meta("hidden_size"), out var hidden))
            throw new HeadException($"{path}: hidden_size/vocab_size metadata are not integers.");
        JsonObject info;
        try { info = JsonNode.Parse(f.Metadata.GetValueOrDefault("info", "{}")) as JsonObject ?? new JsonObject(); }
        catch (JsonException e) { throw new HeadException($"{path}: metadata \"info\" is not JSON ({e.Message})."); }
        var baseModel = f.Metadata.GetValueOrDefault("base_model", "");
        SuperficialHead head = f.Contains("A")
            ? new SuperficialHead(f.Load("A", ScalarType.Float32), vocab) { BaseModel = baseModel, Info = info, SourcePath = Path.GetFullPath(path) }
            : f.Contains("U") && f.Contains("V")
                ? new SuperficialHead(f.Load("U", ScalarType.Float32), f.Load("V", ScalarType.Float32), vocab) { BaseModel = baseModel, Info = info, SourcePath = Path.GetFullPath(path) }
                : throw new HeadException($"{path}: holds neither \"A\" nor \"U\" and \"V\".");
        if (head.HiddenSize != hidden) throw new HeadException($"{path}: metadata hidden_size {hidden} disagrees with the tensors ({head.HiddenSize}).");
        return head;
    }

    /// <summary>The tensors as the head file stores them: "A", or "U" and "V".</summary>
    public KeyValuePair<string, Tensor>[] Tensors() => A is not null
        ? [KeyValuePair.Create("A", A.detach())]
        : [KeyValuePair.Create("U", U!.detach()), KeyValuePair.Create("V", V!.detach())];

    /// <summary>Copies the tensors of a head file (or checkpoint) into this head's parameters.</summary>
    public void LoadValues(SafeTensorsFile file)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in Tensors()) file.CopyInto(name, p);
    }
}
