namespace Superficial.Evaluation.Judges;

/// <summary>A judge could not give a verdict (unreachable, refused the request, or replied without a readable rating).</summary>
public sealed class JudgeException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>True when asking again cannot help (the endpoint refused the request: bad key, unknown model); the run stops.
    /// Otherwise the item alone is recorded as not scored and the run goes on.</summary>
    public bool Fatal { get; init; }
}
