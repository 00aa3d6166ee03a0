namespace Superficial.Evaluation.Runner;

/// <summary>An evaluation run cannot go on: bad options, a broken prediction file, a variant or task that
/// broke its contract. The message names the task, variant or file and what was expected.</summary>
public sealed class EvalRunException(string message, Exception? inner = null) : Exception(message, inner);
