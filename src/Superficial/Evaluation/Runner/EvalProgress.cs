namespace Superficial.Evaluation.Runner;

/// <summary>Where an evaluation run stands: <paramref name="Done"/> of <paramref name="Total"/> examples of one
/// task are recorded for one variant (including those recorded by an earlier, interrupted run).</summary>
public sealed record EvalProgress(string Task, string Variant, int Done, int Total);
