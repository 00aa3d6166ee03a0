using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Superficial.Evaluation.Judges;

/// <summary>
/// Asks an OpenAI-compatible chat-completions endpoint one prompt at a time (temperature 0), with a cap on
/// requests in flight, retries with exponential backoff and jitter on HTTP 429/5xx, time-outs, connection
/// errors, malformed or unreadable replies, and a JSONL cache so interrupted evaluations resume.
/// </summary>
public sealed class OpenAiJudgeClient : IDisposable
{
    readonly JudgeOptions _options;
    readonly HttpClient _http;
    readonly Uri _endpoint;
    readonly SemaphoreSlim _slots;
    readonly JudgeCache? _cache;
    readonly Action<string>? _log;
    long _requests;

    /// <param name="log">Receives retry and cache notices (never the key).</param>
    public OpenAiJudgeClient(JudgeOptions options, Action<string>? log = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.MaxConcurrency < 1) throw new ArgumentOutOfRangeException(nameof(options), "MaxConcurrency must be at least 1.");
        if (options.MaxAttempts < 1) throw new ArgumentOutOfRangeException(nameof(options), "MaxAttempts must be at least 1.");
        if (!Uri.TryCreate(options.BaseUrl.TrimEnd('/') + "/chat/completions", UriKind.Absolute, out var endpoint))
            throw new JudgeException($"The judge URL \"{options.BaseUrl}\" is not an absolute URL.");
        _endpoint = endpoint;
        _log = log is null ? null : s => log(Redact(s));
        _http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        _slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        if (options.CachePath is not null)
        {
            _cache = new JudgeCache(options.CachePath, _log);
            if (_cache.Count > 0) _log?.Invoke($"judge cache {options.CachePath}: {_cache.Count} earlier verdicts loaded.");
        }
    }

    public string Model => _options.Model;
    /// <summary>HTTP requests sent so far (cache hits send none).</summary>
    public long RequestsSent => Interlocked.Read(ref _requests);
    /// <summary>Verdicts in the cache.</summary>
    public int CachedCount => _cache?.Count ?? 0;

    /// <summary>
    /// The judge's reply to <paramref name="prompt"/>, read by <paramref name="parse"/> (null = unreadable, ask again).
    /// A readable reply is cached; after <see cref="JudgeOptions.MaxAttempts"/> failures a <see cref="JudgeException"/>
    /// names the item and shows the last reply or error.
    /// </summary>
    public async Task<T> AskAsync<T>(string itemId, string prompt, Func<string, T?> parse, CancellationToken ct = default) where T : class
    {
        var key = JudgeCache.Key(_options.Model, prompt);
        if (_cache is not null && _cache.TryGet(key, out var cached) && parse(cached) is { } hit) return hit;

        string problem = "no attempt made";
        for (int attempt = 1; attempt <= _options.MaxAttempts; attempt++)
        {
            Attempt result;
            await _slots.WaitAsync(ct).ConfigureAwait(false);
            try { result = await SendAsync(prompt, ct).ConfigureAwait(false); }
            finally { _slots.Release(); }

            if (result.Reply is { } reply)
            {
                if (parse(reply) is { } verdict)
                {
                    if (_cache is not null) await _cache.AddAsync(key, _options.Model, itemId, reply, ct).ConfigureAwait(false);
                    return verdict;
                }
                problem = $"the reply has no readable rating; reply: \"{OneLine(Excerpt(reply, 300))}\"";
            }
            else if (result.Fatal) throw new JudgeException(Redact($"Judge {_options.Model} refused item {itemId}: {result.Problem}")) { Fatal = true };
            else problem = result.Problem!;

            if (attempt == _options.MaxAttempts) break;
            var delay = Backoff(attempt, result.RetryAfter);
            _log?.Invoke($"judge: item {itemId}, attempt {attempt}/{_options.MaxAttempts}: {FirstLine(problem)}; retrying in {delay.TotalSeconds:0.##} s");
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
        throw new JudgeException(Redact($"Judge {_options.Model} gave no verdict for item {itemId} after {_options.MaxAttempts} attempts: {problem}"));
    }

    /// <summary>The outcome of one request: a reply, or a problem that is transient (retry) or fatal.</summary>
    readonly record struct Attempt(string? Reply, string? Problem = null, bool Fatal = false, TimeSpan? RetryAfter = null);

    async Task<Attempt> SendAsync(string prompt, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["model"] = _options.Model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }),
            ["temperature"] = 0,
            ["max_tokens"] = _options.MaxTokens,
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (_options.ApiKey is { } apiKey) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.RequestTimeout);
        Interlocked.Increment(ref _requests);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            var text = await ReadBoundedAsync(response, timeout.Token).ConfigureAwait(false);
            if (text is null)
                return new Attempt(null, $"HTTP {(int)response.StatusCode} reply larger than {MaxReplyBytes >> 20} MiB; not read");
            int status = (int)response.StatusCode;
            if (status == 429 || status == 408 || status >= 500)
                return new Attempt(null, $"HTTP {status} {Excerpt(text, 300)}", RetryAfter: RetryAfter(response));
            if (!response.IsSuccessStatusCode)
                return new Attempt(null, $"HTTP {status} from {_endpoint}: {Excerpt(text, 600)}", Fatal: true);
            return ReadContent(text) is { } content
                ? new Attempt(content)
                : new Attempt(null, $"malformed response body (expected choices[0].message.content): {Excerpt(text, 300)}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new Attempt(null, $"no reply within {_options.RequestTimeout.TotalSeconds:0.##} s");
        }
        catch (HttpRequestException e)
        {
            return new Attempt(null, $"connection error: {e.Message}");
        }
        catch (IOException e)
        {
            return new Attempt(null, $"connection error: {e.Message}");
        }
    }

    /// <summary>Replies are read up to this size: a judge's verdict is a few hundred bytes, and a runaway reply must not exhaust memory.</summary>
    public const int MaxReplyBytes = 8 << 20;

    static async Task<string?> ReadBoundedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength is > MaxReplyBytes) return null;
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new MemoryStream();
        var block = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(block, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxReplyBytes) return null;
            buffer.Write(block, 0, n);
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>choices[0].message.content, or null for any other shape (empty choices on content filtering, null content, not JSON).</summary>
    static string? ReadContent(string json)
    {
        try
        {
            if (JsonNode.Parse(json) is not JsonObject root || root["choices"] is not JsonArray { Count: > 0 } choices) return null;
            return choices[0] is JsonObject first && first["message"] is JsonObject message
                   && message["content"] is JsonValue content && content.TryGetValue(out string? text) ? text : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var h = response.Headers.RetryAfter;
        if (h?.Delta is { } delta) return delta;
        if (h?.Date is { } date) return date - DateTimeOffset.UtcNow;
        return null;
    }

    TimeSpan Backoff(int attempt, TimeSpan? retryAfter)
    {
        double baseMs = Math.Min(_options.MaxBackoff.TotalMilliseconds,
            _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, attempt - 1));
        // Jitter spreads retries of concurrent requests so they do not hit the server together again.
        double ms = baseMs * (0.5 + Random.Shared.NextDouble() * 0.5);
        if (retryAfter is { } ra && ra.TotalMilliseconds > ms)
            ms = Math.Min(ra.TotalMilliseconds, Math.Max(_options.MaxBackoff.TotalMilliseconds, 300_000));
        return TimeSpan.FromMilliseconds(Math.Max(0, ms));
    }

    /// <summary>Removes the API key from any text that leaves this class.</summary>
    string Redact(string s) =>
        _options.ApiKey is { Length: > 0 } k ? s.Replace(k, "[redacted]", StringComparison.Ordinal) : s;

    static string Excerpt(string s, int max = 2000) => s.Length <= max ? s : s[..max] + $"... ({s.Length} chars)";
    static string FirstLine(string s) { int i = s.IndexOf('\n'); return i < 0 ? s : s[..i]; }
    static string OneLine(string s) => s.Replace("\r", "").Replace("\n", "\\n");

    public void Dispose()
    {
        _http.Dispose();
        _slots.Dispose();
        _cache?.Dispose();
    }
}
