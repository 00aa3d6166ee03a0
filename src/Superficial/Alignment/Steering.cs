using Superficial.Generation;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Alignment;

/// <summary>How a head trained on a small base model steers a larger model.</summary>
public enum TransferMode
{
    /// <summary>Run the small model beside and add its logit shift (offsite alignment).</summary>
    Offset,
    /// <summary>Apply the head to the larger model's own hidden states (same hidden size only).</summary>
    Direct,
}

/// <summary>What a base model run beside a chat model reads.</summary>
public enum SideModelReads
{
    /// <summary>The raw prompt, as when the head was extracted, then the same generated or scored tokens.</summary>
    Raw,
    /// <summary>Exactly the tokens the model it steers reads, chat template included.</summary>
    Same,
}

/// <summary>How a superficial head is put to use on a model (what the --head / --transfer-from / --recover-with flags ask for).</summary>
public sealed record SteeringRequest
{
    /// <summary>A head to apply directly to the model (base + head).</summary>
    public string? Head { get; init; }
    /// <summary>Small base model whose head (<see cref="Head"/>) steers this larger model (offsite alignment).</summary>
    public string? TransferFrom { get; init; }
    /// <summary>With <see cref="TransferFrom"/>: run the small model beside (default) or apply the head to this model's hidden states.</summary>
    public TransferMode TransferMode { get; init; } = TransferMode.Offset;
    /// <summary>A head to restore the alignment of a compromised model.</summary>
    public string? RecoverWith { get; init; }
    /// <summary>With <see cref="RecoverWith"/>: compute the shift with this original base model beside the compromised one.</summary>
    public string? ViaBase { get; init; }
    /// <summary>What the base beside a chat model (<see cref="ViaBase"/>) reads: the raw prompt (default) or the same tokens.</summary>
    public SideModelReads ViaBaseReads { get; init; } = SideModelReads.Raw;
    public double Alpha { get; init; } = 1.0;
    /// <summary>Apply the head even to a model other than the base it was trained on (a deliberate transfer; --allow-other-base).</summary>
    public bool AllowOtherBase { get; init; }

    public bool IsEmpty => Head is null && RecoverWith is null;
}

/// <summary>A transform built from a <see cref="SteeringRequest"/>, owning any side model it loaded.</summary>
public sealed class Steering : IDisposable
{
    readonly List<IDisposable> owned = [];
    public ILogitTransform? Transform { get; private set; }
    /// <summary>What was built, in words (printed and stored in results).</summary>
    public string Description => Transform?.Description ?? "none";

    Steering() { }

    public static Steering Build(CausalLM model, TextTokenizer tokenizer, SteeringRequest r)
    {
        var s = new Steering();
        Action? baseCheck = null;
        try
        {
            if (r.RecoverWith is not null && (r.Head is not null || r.TransferFrom is not null))
                throw new ArgumentException("`RecoverWith` cannot be combined with `Head` or `TransferFrom`.");
            if (r.TransferFrom is not null && r.Head is null)
                throw new ArgumentException("`TransferFrom` needs `Head`: the head trained on that small base model.");
            if (r.ViaBase is not null && r.RecoverWith is null)
                throw new ArgumentException("`ViaBase` is used with `RecoverWith`.");
            if (!Enum.IsDefined(r.ViaBaseReads)) throw new ArgumentOutOfRangeException(nameof(r.ViaBaseReads), r.ViaBaseReads, null);
            if (r.RecoverWith is not null)
            {
                var head = s.Own(SuperficialHead.Load(r.RecoverWith));
                // Direct recovery applies the head to the compromised model by design; via the base, the base must be the head's.
                if (r.ViaBase is not null) baseCheck = () => head.CheckBase(r.ViaBase, "recovery base (`ViaBase`)", r.AllowOtherBase);
                s.Transform = r.ViaBase is null
                    ? new HeadTransform(head, r.Alpha)
                    : new SideModelOffset(s.LoadSide(r.ViaBase, model, tokenizer), head, r.Alpha, "recovery base", readsOwnPrompt: r.ViaBaseReads == SideModelReads.Raw);
            }
            else if (r.Head is not null)
            {
                var head = s.Own(SuperficialHead.Load(r.Head));
                baseCheck = r.TransferFrom is null
                    ? () => head.CheckBase(model.SourceFolder, "model it is applied to", r.AllowOtherBase)
                    : () => head.CheckBase(r.TransferFrom, "small base (`TransferFrom`)", r.AllowOtherBase);
                if (r.TransferFrom is null) s.Transform = new HeadTransform(head, r.Alpha);
                else if (r.TransferMode == TransferMode.Direct)
                {
                    if (head.HiddenSize != model.HiddenSize)
                        throw new HeadException(
                            $"`TransferMode` direct applies the head to this model's hidden states, but the head has hidden size {head.HiddenSize} " +
                            $"and the model {model.HiddenSize}; use `TransferMode` offset (the small model runs beside it).");
                    s.Transform = new HeadTransform(head, r.Alpha);
                }
                else if (r.TransferMode == TransferMode.Offset)
                    s.Transform = new SideModelOffset(s.LoadSide(r.TransferFrom, model, tokenizer), head, r.Alpha, "small base");
                else throw new ArgumentOutOfRangeException(nameof(r.TransferMode), r.TransferMode, null);
            }
            s.Transform?.CheckCompatible(model);
            baseCheck?.Invoke(); // after the shape checks, whose messages are more specific
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    T Own<T>(T d) where T : IDisposable { owned.Add(d); return d; }

    CausalLM LoadSide(string folder, CausalLM main, TextTokenizer mainTok)
    {
        var sideTok = TextTokenizer.Load(folder);
        if (sideTok.VocabSize != mainTok.VocabSize)
            throw new HeadException($"{folder} has a tokenizer of {sideTok.VocabSize} ids but the steered model has {mainTok.VocabSize}: the two must share the vocabulary.");
        if (SharedVocabulary.FirstDifference(sideTok, mainTok, mainTok.VocabSize) is int id)
            throw new HeadException($"{folder}'s tokenizer differs from the steered model's at id {id}: the two must share the vocabulary.");
        return Own(CausalLM.Load(folder, main.DType));
    }

    public void Dispose()
    {
        foreach (var d in owned) d.Dispose();
        owned.Clear();
    }
}
