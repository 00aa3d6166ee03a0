using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>
/// Applies a superficial head to the model being run: logits + alpha W (A h), with W and h the model's own
/// LM head and final hidden state. This is "base + head"; on a compromised model it is direct recovery,
/// and on a larger model of the same hidden size it is direct transfer.
/// </summary>
public sealed class HeadTransform(SuperficialHead head, double alpha = 1.0) : ILogitTransform
{
    CausalLM? model;

    public string Description => $"superficial head ({(head.Rank is int r ? $"rank {r}" : "full rank")}, applied directly{AlphaText(alpha)})";

    public void CheckCompatible(CausalLM m) { head.CheckFits(m); model = m; }

    public ILogitSession Begin(int batch, int capacity) =>
        new Session(head, model ?? throw new InvalidOperationException("CheckCompatible was not called."), alpha);

    internal static string AlphaText(double alpha) => alpha == 1.0 ? "" : $", alpha {alpha:0.###}";

    sealed class Session(SuperficialHead head, CausalLM model, double alpha) : ILogitSession
    {
        public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits)
        {
            using var scope = NewDisposeScope();
            var h = hidden.reshape(-1, hidden.shape[^1]).index_select(0, select);
            var shift = model.Logits(head.Delta(h));
            return (alpha == 1.0 ? logits + shift : logits + alpha * shift).MoveToOuterDisposeScope();
        }
        public void KeepRows(Tensor rows) { }
        public void Dispose() { }
    }
}

/// <summary>
/// Adds the superficial logit shift computed by a second model that reads the same tokens in lockstep
/// (with its own KV cache): z + alpha W_s (A h_s). With a small base model and its head this is offsite
/// alignment of a larger model; with the original base model beside a compromised model it is recovery
/// via the base. The two models must share the vocabulary (same token ids).
/// </summary>
public sealed class SideModelOffset(CausalLM side, SuperficialHead head, double alpha = 1.0, string role = "transfer") : ILogitTransform
{
    public string Description =>
        $"superficial logit shift from {role} model {side.SourceFolder ?? "(in memory)"} (hidden {side.HiddenSize}){HeadTransform.AlphaText(alpha)}";

    public void CheckCompatible(CausalLM main)
    {
        head.CheckFits(side, $"{role} model");
        if (main.VocabSize != side.VocabSize)
            throw new HeadException(
                $"the {role} model has a vocabulary of {side.VocabSize} ids but the model it steers has {main.VocabSize}: " +
                "the logit shift can only be added when both models share the vocabulary (same tokenizer).");
    }

    public ILogitSession Begin(int batch, int capacity) => new Session(side, head, alpha, side.NewCache(batch, capacity));

    sealed class Session(CausalLM side, SuperficialHead head, double alpha, KvCache cache) : ILogitSession
    {
        public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits)
        {
            using var scope = NewDisposeScope();
            var hs = side.Forward(step.InputIds, step.PositionIds, cache, step.AttentionMask);
            var h = hs.reshape(-1, hs.shape[^1]).index_select(0, select);
            var shift = side.Logits(head.Delta(h)).to_type(logits.dtype);
            return (alpha == 1.0 ? logits + shift : logits + alpha * shift).MoveToOuterDisposeScope();
        }
        public void KeepRows(Tensor rows) => cache.SelectRows(rows);
        public void Dispose() => cache.Dispose();
    }
}
