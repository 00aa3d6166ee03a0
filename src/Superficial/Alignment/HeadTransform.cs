using Superficial.Tensors;
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

    public ILogitSession Begin(int batch, int capacity, IReadOnlyList<SidePrompt>? sidePrompts = null) =>
        new Session(head, model ?? throw new InvalidOperationException("CheckCompatible was not called."), alpha);

    internal static string AlphaText(double alpha) => alpha == 1.0 ? "" : $", alpha {alpha:0.###}";

    sealed class Session(SuperficialHead head, CausalLM model, double alpha) : ILogitSession
    {
        public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits)
        {
            using var scope = NewDisposeScope();
            var h = hidden.reshape(-1, hidden.shape[^1]).index_select(0, select);
            var shift = model.HeadLogits(head.Delta(h));
            return (alpha == 1.0 ? logits.Plus(shift) : logits.Plus(shift.Times(alpha))).MoveToOuterDisposeScope();
        }
        public void KeepRows(Tensor rows) { }
        public void Append(ILogitSession other) => other.Dispose();
        public void Dispose() { }
    }
}
