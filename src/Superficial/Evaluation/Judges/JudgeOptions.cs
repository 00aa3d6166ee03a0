namespace Superficial.Evaluation.Judges;

/// <summary>
/// Where and how to reach an OpenAI-compatible chat-completions judge. The API key is held here only:
/// it is sent as a bearer token and never printed (<see cref="ToString"/> leaves it out).
/// </summary>
public sealed class JudgeOptions
{
    public const string UrlVariable = "SUPERFICIAL_JUDGE_URL";
    public const string ModelVariable = "SUPERFICIAL_JUDGE_MODEL";
    public const string KeyVariable = "SUPERFICIAL_JUDGE_KEY";
    public const string OpenAiKeyVariable = "OPENAI_API_KEY";
    /// <summary>Tries per judged item (default 6) and the first retry's delay in seconds (default 2, doubling).</summary>
    public const string AttemptsVariable = "SUPERFICIAL_JUDGE_ATTEMPTS", BackoffVariable = "SUPERFICIAL_JUDGE_BACKOFF";
    public const string DefaultUrl = "https://api.openai.com/v1";

    /// <summary>API base, e.g. https://api.openai.com/v1 or http://localhost:8000/v1; requests go to {BaseUrl}/chat/completions.</summary>
    public required string BaseUrl { get; init; }
    public required string Model { get; init; }
    /// <summary>Bearer token; null for servers without authentication.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Requests in flight at once.</summary>
    public int MaxConcurrency { get; init; } = 4;
    /// <summary>Tries per item, counting the first, for transient failures and unreadable replies alike.</summary>
    public int MaxAttempts { get; init; } = 6;
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>First retry delay; it doubles each retry (plus random jitter) up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(2);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(60);
    public int MaxTokens { get; init; } = 1024;
    /// <summary>JSONL file of earlier verdicts; an interrupted evaluation resumes from it. Null: no cache.</summary>
    public string? CachePath { get; init; }

    /// <summary>
    /// Options from arguments, falling back to SUPERFICIAL_JUDGE_URL, SUPERFICIAL_JUDGE_MODEL and
    /// SUPERFICIAL_JUDGE_KEY (else OPENAI_API_KEY).
    /// </summary>
    public static JudgeOptions FromEnvironment(string? url = null, string? model = null, string? apiKey = null, string? cachePath = null)
    {
        url = NonEmpty(url) ?? NonEmpty(Environment.GetEnvironmentVariable(UrlVariable)) ?? DefaultUrl;
        model = NonEmpty(model) ?? NonEmpty(Environment.GetEnvironmentVariable(ModelVariable))
            ?? throw new JudgeException($"No judge model given: pass the judge model option or set {ModelVariable} (e.g. gpt-4o-mini).");
        apiKey = NonEmpty(apiKey) ?? NonEmpty(Environment.GetEnvironmentVariable(KeyVariable))
            ?? NonEmpty(Environment.GetEnvironmentVariable(OpenAiKeyVariable));
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            throw new JudgeException($"The judge URL \"{url}\" is not an http(s) URL.");
        if (apiKey is null && uri.Host.EndsWith("openai.com", StringComparison.OrdinalIgnoreCase))
            throw new JudgeException($"No API key for {uri.Host}: set {KeyVariable} or {OpenAiKeyVariable}.");
        var attempts = Environment.GetEnvironmentVariable(AttemptsVariable) is { Length: > 0 } a
            ? int.TryParse(a, out var n) && n >= 1 ? n : throw new JudgeException($"{AttemptsVariable}={a}: expected a whole number of at least 1.")
            : 6;
        var backoff = Environment.GetEnvironmentVariable(BackoffVariable) is { Length: > 0 } b
            ? double.TryParse(b, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var sec) && sec >= 0
                ? TimeSpan.FromSeconds(sec) : throw new JudgeException($"{BackoffVariable}={b}: expected seconds (a number of at least 0).")
            : TimeSpan.FromSeconds(2);
        return new JudgeOptions { BaseUrl = url, Model = model, ApiKey = apiKey, CachePath = cachePath, MaxAttempts = attempts, InitialBackoff = backoff };
    }

    static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    public override string ToString() => $"{Model} at {BaseUrl}";
}
