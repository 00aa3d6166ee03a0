using static TorchSharp.torch;

namespace Superficial.Generation;

/// <summary>
/// What the main model read in one forward pass. A transform that runs a model of its own (transfer,
/// recovery via a base model) feeds it exactly these tokens, positions and mask, so both stay in lockstep.
/// </summary>
/// <param name="InputIds">[B, T] tokens of this pass (the whole prompt at prefill, one token when decoding).</param>
/// <param name="PositionIds">[B, T] their positions.</param>
/// <param name="AttentionMask">[B, past + T]: 1 for tokens, 0 for left padding.</param>
public readonly record struct StepContext(Tensor InputIds, Tensor PositionIds, Tensor AttentionMask);

/// <summary>
/// What a side model reads in place of one row's prompt: the main model's first
/// <paramref name="MainPromptLength"/> tokens are its prompt (e.g. in a chat template), the side model reads
/// <paramref name="Ids"/> instead (e.g. the raw prompt a base model was extracted on); all tokens after the
/// prompt (generated, or a scored continuation) are read by both.
/// </summary>
public sealed record SidePrompt(int MainPromptLength, IReadOnlyList<int> Ids);

/// <summary>
/// A change to the next-token logits of a model: the superficial head, a logit offset computed by a
/// second model, a transferred head. <see cref="Begin"/> starts a session for one batch of sequences.
/// </summary>
public interface ILogitTransform
{
    /// <summary>One line saying what the transform does (for logs, manifests and reports).</summary>
    string Description { get; }
    /// <summary>Checks that the transform fits the model it will modify; throws with a clear message if not.</summary>
    void CheckCompatible(Models.CausalLM model);
    /// <summary>Whether the transform runs a side model that should read its own rendering of each prompt (see <see cref="SidePrompt"/>).</summary>
    bool ReadsOwnPrompt => false;
    /// <summary>Starts a session for a batch; <paramref name="sidePrompts"/> (one per row) only matter when <see cref="ReadsOwnPrompt"/>.</summary>
    ILogitSession Begin(int batch, int capacity, IReadOnlyList<SidePrompt>? sidePrompts = null);
}

/// <summary>The per-batch state of a transform (e.g. a second model's KV cache).</summary>
public interface ILogitSession : IDisposable
{
    /// <summary>
    /// Called after every forward pass of the main model. <paramref name="hidden"/> [B, T, H] are its final
    /// hidden states for the step; <paramref name="select"/> [N] flat indices into B x T pick the positions
    /// whose logits are wanted; <paramref name="logits"/> [N, V] are the main model's linear head logits there
    /// (<see cref="Models.CausalLM.HeadLogits"/>, before the family's final soft-cap, which is applied after every
    /// transform: z = cap tanh(W (h + A h) / cap) on Gemma 2).
    /// Returns the transformed logits [N, V]. Must consume the whole step (all T tokens) to keep any state in sync.
    /// </summary>
    Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits);

    /// <summary>Keeps only these batch rows (finished sequences leave the batch).</summary>
    void KeepRows(Tensor rows);

    /// <summary>
    /// Continuous batching: takes over <paramref name="other"/>'s rows (a session of the same transform), after
    /// this session's rows, as <see cref="Models.KvCache.Concat"/> joins the main model's caches; <paramref name="other"/>
    /// is disposed. A session that cannot join batches throws <see cref="NotSupportedException"/>.
    /// </summary>
    void Append(ILogitSession other) => throw new NotSupportedException($"{GetType().FullName} cannot join a running batch.");

    /// <summary>The main model's cache dropped its first <paramref name="columns"/> positions (left padding of every row).</summary>
    void DropLeft(int columns) { }
}
