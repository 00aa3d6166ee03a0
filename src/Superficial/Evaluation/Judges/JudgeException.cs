namespace Superficial.Evaluation.Judges;

/// <summary>A judge could not give a verdict (unreachable, refused the request, or replied without a readable rating).</summary>
public sealed class JudgeException(string message, Exception? inner = null) : Exception(message, inner);
