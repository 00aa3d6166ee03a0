namespace Superficial.Generation;

/// <summary>A prompt (by its index in the list given) that does not fit the model's context; callers that know ids re-throw naming it.</summary>
public sealed class PromptTooLongException(int index, int tokens, int limit, string message) : Exception(message)
{
    public int Index => index;
    public int Tokens => tokens;
    public int Limit => limit;
}

/// <summary>
/// The one rule for prompts against a model's context (max_position_embeddings): a prompt must leave room
/// for what is generated after it. Beyond the context a model runs silently on positions it never saw, and a
/// runaway prompt (a 2 MB line) would ask for a quadratic attention allocation of terabytes.
/// </summary>
public static class PromptLength
{
    /// <summary>
    /// The positions a model reads: max_position_embeddings, extended by the factor of a rope scaling that is
    /// meant to run past it (dynamic NTK, YaRN), as transformers does.
    /// </summary>
    public static int ContextOf(Models.ModelConfig c) =>
        c.RopeScaling is { Type: "dynamic" or "yarn" } s ? (int)Math.Min(int.MaxValue, Math.Max(c.MaxPositions, c.MaxPositions * s.Factor)) : c.MaxPositions;

    /// <summary>Throws <see cref="PromptTooLongException"/> for the first of <paramref name="prompts"/> longer than <paramref name="limit"/> tokens.</summary>
    public static void Check(IReadOnlyList<IReadOnlyList<int>> prompts, int limit, string what)
    {
        for (int i = 0; i < prompts.Count; i++)
            if (prompts[i].Count > limit)
                throw new PromptTooLongException(i, prompts[i].Count, limit,
                    $"prompt {i} has {prompts[i].Count} tokens, more than the {limit} that {what} allows.");
    }

    /// <summary>
    /// <paramref name="ids"/> if it has at most <paramref name="limit"/> tokens; else, with <paramref name="truncate"/>, its last
    /// <paramref name="limit"/> tokens (the end of a prompt is what the answer follows) and a warning naming the prompt; else an error naming it.
    /// </summary>
    public static IReadOnlyList<int> Fit(IReadOnlyList<int> ids, int limit, string promptId, string what, bool truncate, Action<string>? warn)
    {
        if (ids.Count <= limit) return ids;
        if (limit < 1 || !truncate)
            throw new ArgumentException(
                $"prompt \"{promptId}\" has {ids.Count} tokens, more than the {Math.Max(0, limit)} that {what} allows" +
                (limit < 1 ? "." : "; shorten it, lower `MaxNewTokens`, or set `TruncatePrompts` to keep its last tokens."));
        warn?.Invoke($"prompt \"{promptId}\" truncated from {ids.Count} to its last {limit} tokens ({what}).");
        return ids.Skip(ids.Count - limit).ToArray();
    }
}
