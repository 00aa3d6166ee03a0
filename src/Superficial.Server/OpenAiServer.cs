using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using Superficial.Generation;
using Superficial.Serving;

namespace Superficial.Server;

/// <summary>How the server listens and what it allows.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind: 127.0.0.1 (default), localhost, ::1, 0.0.0.0, :: or any IP address.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>Port; 0 picks a free one (see <see cref="OpenAiServer.BaseAddress"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>Bearer key every request but /health must carry; required when binding beyond loopback.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Whether request logs include the prompt text (off by default: prompts may be private).</summary>
    public bool LogPrompts { get; init; }
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>max_tokens when a request gives none (capped by the engine's limit and the model's positions).</summary>
    public int DefaultMaxTokens { get; init; } = 256;
    /// <summary>On shutdown (SIGTERM), how long running requests may take to finish.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Where request log lines go (default: standard error).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// An OpenAI-compatible HTTP server over a <see cref="ServingEngine"/>: POST /v1/chat/completions and
/// /v1/completions (JSON or server-sent events), GET /v1/models, /health and /metrics (Prometheus text).
/// On SIGTERM (or <see cref="StopAsync"/>) it stops taking requests, lets running ones finish, then stops.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };
    readonly WebApplication app;
    readonly ServingEngine engine;
    readonly ServerOptions options;
    readonly ServerMetrics metrics;
    readonly Action<string> log;
    readonly long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    OpenAiServer(WebApplication app, ServingEngine engine, ServerOptions options)
    {
        this.app = app;
        this.engine = engine;
        this.options = options;
        metrics = new ServerMetrics(engine);
        log = options.Log ?? Console.Error.WriteLine;
    }

    /// <summary>The address clients use, e.g. http://127.0.0.1:8000/ (OpenAI clients take BaseAddress + "v1").</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Checks the options, binds and starts serving.</summary>
    public static async Task<OpenAiServer> StartAsync(ServingEngine engine, ServerOptions options)
    {
        var ip = ParseHost(options.Host);
        if (!IPAddress.IsLoopback(ip) && string.IsNullOrEmpty(options.ApiKey))
            throw new ArgumentException($"--host {options.Host} is reachable from other machines: give --api-key KEY (clients send it as a Bearer token).");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.DrainTimeout);
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(ip, options.Port);
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        var app = builder.Build();
        var server = new OpenAiServer(app, engine, options);
        server.Map();
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            server.log($"draining: {engine.ActiveSequences} running, {engine.QueueDepth} queued; new requests are refused");
            _ = engine.DrainAsync();
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    static IPAddress ParseHost(string host) => host switch
    {
        "localhost" => IPAddress.Loopback,
        _ => IPAddress.TryParse(host, out var ip) ? ip : throw new ArgumentException($"--host {host}: expected an IP address (127.0.0.1, 0.0.0.0, ::1, ...) or localhost."),
    };

    /// <summary>Completes when the server has stopped (after SIGTERM or <see cref="StopAsync"/>), running requests drained.</summary>
    public Task WaitForShutdownAsync() => app.WaitForShutdownAsync();

    /// <summary>Stops taking requests, lets running ones finish (up to the drain timeout) and stops.</summary>
    public async Task StopAsync()
    {
        _ = engine.DrainAsync();
        await app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    void Map()
    {
        app.MapGet("/health", ctx => Json(ctx, 200, new JsonObject
        {
            ["status"] = engine.Accepting ? "ok" : "draining",
            ["models"] = new JsonArray(engine.Variants.Select(v => (JsonNode)v.Name).ToArray()),
            ["queue_depth"] = engine.QueueDepth, ["active_sequences"] = engine.ActiveSequences,
        }));
        app.MapGet("/v1/models", ctx => Guarded(ctx, "models", () => Json(ctx, 200, new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(engine.Variants.Select(v => (JsonNode)new JsonObject
            {
                ["id"] = v.Name, ["object"] = "model", ["created"] = created, ["owned_by"] = "superficial",
                ["description"] = v.Description,
            }).ToArray()),
        })));
        app.MapGet("/metrics", ctx => Guarded(ctx, "metrics", async () =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        }));
        app.MapPost("/v1/chat/completions", ctx => Guarded(ctx, "chat", () => Generate(ctx, chat: true)));
        app.MapPost("/v1/completions", ctx => Guarded(ctx, "completions", () => Generate(ctx, chat: false)));
        app.MapFallback(ctx => Error(ctx, new ApiException(404, $"no route {ctx.Request.Method} {ctx.Request.Path}; see /v1/models, /v1/chat/completions, /v1/completions.", code: "not_found")));
    }

    /// <summary>Checks the API key, turns refusals into OpenAI error objects, counts the request.</summary>
    async Task Guarded(HttpContext ctx, string endpoint, Func<Task> handle)
    {
        try
        {
            if (!string.IsNullOrEmpty(options.ApiKey) && !KeyMatches(ctx.Request.Headers.Authorization.ToString()))
                throw new ApiException(401, "missing or wrong API key: send the server's key as \"Authorization: Bearer KEY\".", "invalid_request_error", code: "invalid_api_key");
            await handle();
        }
        catch (ApiException e) when (!ctx.Response.HasStarted)
        {
            await Error(ctx, e);
        }
        finally
        {
            metrics.Requests.WithLabels(endpoint, ctx.Items["model"] as string ?? "", ctx.Response.StatusCode.ToString()).Inc();
        }
    }

    bool KeyMatches(string header)
    {
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.Ordinal)) return false;
        var given = Encoding.UTF8.GetBytes(header[prefix.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(options.ApiKey!));
    }

    async Task Generate(HttpContext ctx, bool chat)
    {
        var start = Stopwatch.GetTimestamp();
        var request = OpenAiRequest.Parse(await ReadBody(ctx), chat);
        ctx.Items["model"] = request.Model;
        var variant = engine.Find(request.Model) ?? throw new ApiException(404,
            $"the model \"{request.Model}\" does not exist; this server offers {string.Join(", ", engine.Variants.Select(v => v.Name))}.",
            param: "model", code: "model_not_found");
        EncodedPrompt prompt;
        try { prompt = chat ? variant.EncodeChat(request.Messages!) : variant.EncodeText(request.Prompt!); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or Text.UnrecognizedChatTemplateException)
        {
            throw new ApiException(400, $"cannot render the {(chat ? "messages" : "prompt")}: {e.Message}", param: chat ? "messages" : "prompt");
        }
        int room = variant.Model.Config.MaxPositions - prompt.Ids.Count;
        int maxTokens = request.MaxTokens ?? Math.Max(1, Math.Min(options.DefaultMaxTokens, Math.Min(engine.Limits.MaxNewTokens, room)));
        GenerationStream stream;
        try { stream = engine.Submit(new EngineRequest(variant.Name, prompt, request.Options(maxTokens), request.Alpha), ctx.RequestAborted); }
        catch (RequestRejectedException e) { throw new ApiException(e.Param == "model" ? 404 : 400, e.Message, param: e.Param, code: e.Param == "model" ? "model_not_found" : null); }
        catch (QueueFullException e)
        {
            ctx.Response.Headers.RetryAfter = e.RetryAfterSeconds.ToString();
            throw new ApiException(429, e.Message, "rate_limit_error", code: "queue_full");
        }
        catch (EngineClosedException e) { throw new ApiException(503, e.Message, "server_error", code: "shutting_down"); }

        string id = (chat ? "chatcmpl-" : "cmpl-") + Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant();
        long createdAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var text = new IncrementalText(variant.Tokenizer, request.Stop);
        double? ttft = null;
        string outcome = "cancelled";
        GenerationResult? result = null;
        try
        {
            if (request.Stream)
            {
                ctx.Response.ContentType = "text/event-stream";
                ctx.Response.Headers.CacheControl = "no-cache";
                if (chat) await Sse(ctx, Chunk(id, createdAt, request, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null));
                else await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }
            await foreach (var token in stream.Tokens.ReadAllAsync(ctx.RequestAborted))
            {
                ttft ??= Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (!request.Stream) continue;
                var piece = text.Push(token);
                if (piece.Length > 0) await Sse(ctx, Chunk(id, createdAt, request, piece, null, chat));
            }
            result = await stream.Completion.WaitAsync(ctx.RequestAborted);
            var finish = result.Finish == FinishReason.Length ? "length" : "stop";
            var usage = new JsonObject
            {
                ["prompt_tokens"] = prompt.Ids.Count, ["completion_tokens"] = result.TokenIds.Count,
                ["total_tokens"] = prompt.Ids.Count + result.TokenIds.Count,
            };
            if (request.Stream)
            {
                var rest = text.Finish(result.Text);
                if (rest.Length > 0) await Sse(ctx, Chunk(id, createdAt, request, rest, null, chat));
                await Sse(ctx, Chunk(id, createdAt, request, chat ? new JsonObject() : "", finish, chat));
                if (request.IncludeUsage)
                    await Sse(ctx, new JsonObject
                    {
                        ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = createdAt,
                        ["model"] = request.Model, ["choices"] = new JsonArray(), ["usage"] = usage,
                    });
                await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }
            else
            {
                JsonObject choice = chat
                    ? new() { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = result.Text }, ["logprobs"] = null, ["finish_reason"] = finish }
                    : new() { ["index"] = 0, ["text"] = result.Text, ["logprobs"] = null, ["finish_reason"] = finish };
                await Json(ctx, 200, new JsonObject
                {
                    ["id"] = id, ["object"] = chat ? "chat.completion" : "text_completion", ["created"] = createdAt, ["model"] = request.Model,
                    ["choices"] = new JsonArray(choice), ["usage"] = usage,
                });
            }
            outcome = finish;
            metrics.PromptTokens.WithLabels(request.Model).Inc(prompt.Ids.Count);
            metrics.CompletionTokens.WithLabels(request.Model).Inc(result.TokenIds.Count);
            if (ttft is double t) metrics.TimeToFirstToken.WithLabels(request.Model).Observe(t);
            metrics.Latency.WithLabels(request.Model).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away; the engine frees its slot at the next step
        }
        finally
        {
            var line = $"{ctx.Request.Method} {ctx.Request.Path} model={request.Model} stream={request.Stream.ToString().ToLowerInvariant()} " +
                       $"prompt_tokens={prompt.Ids.Count} completion_tokens={result?.TokenIds.Count ?? 0} finish={outcome} " +
                       $"ttft_ms={(ttft is double x ? (x * 1000).ToString("0") : "-")} ms={Stopwatch.GetElapsedTime(start).TotalMilliseconds:0}";
            if (options.LogPrompts) line += " prompt=" + JsonSerializer.Serialize(chat ? string.Join("\n", request.Messages!.Select(m => $"{m.Role}: {m.Content}")) : request.Prompt);
            log(line);
        }
    }

    /// <summary>The body as JSON: 413 past the size limit, 400 when it is not JSON.</summary>
    async Task<JsonElement> ReadBody(HttpContext ctx)
    {
        if (ctx.Request.ContentLength > options.MaxBodyBytes) throw TooLarge();
        try
        {
            using var doc = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted);
            return doc.RootElement.Clone();
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413) { throw TooLarge(); }
        catch (JsonException e) { throw new ApiException(400, $"the request body is not valid JSON: {e.Message}", code: "invalid_json"); }
    }

    ApiException TooLarge() => new(413, $"the request body is larger than this server's limit of {options.MaxBodyBytes} bytes.", code: "request_too_large");

    static JsonObject Chunk(string id, long created, OpenAiRequest r, JsonNode delta, string? finish, bool chat = true) => new()
    {
        ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = created, ["model"] = r.Model,
        ["choices"] = new JsonArray(chat
            ? new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }
            : new JsonObject { ["index"] = 0, ["text"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }),
    };

    static JsonObject Chunk(string id, long created, OpenAiRequest r, string piece, string? finish, bool chat) =>
        Chunk(id, created, r, chat ? new JsonObject { ["content"] = piece } : JsonValue.Create(piece), finish, chat);

    static async Task Sse(HttpContext ctx, JsonObject o)
    {
        await ctx.Response.WriteAsync("data: " + o.ToJsonString(Compact) + "\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    static async Task Json(HttpContext ctx, int status, JsonObject o)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(o.ToJsonString(Compact), ctx.RequestAborted);
    }

    static Task Error(HttpContext ctx, ApiException e) => Json(ctx, e.Status, new JsonObject
    {
        ["error"] = new JsonObject { ["message"] = e.Message, ["type"] = e.Type, ["param"] = e.Param, ["code"] = e.Code },
    });
}
