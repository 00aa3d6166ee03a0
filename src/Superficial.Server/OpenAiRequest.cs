using System.Security.Cryptography;
using System.Text.Json;
using Superficial.Generation;
using Superficial.Text;

namespace Superficial.Server;

/// <summary>A request the server refuses, with the HTTP status and OpenAI's error fields.</summary>
public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status => status;
    public string Type => type;
    public string? Param => param;
    public string? Code => code;
}

/// <summary>
/// The fields of an OpenAI chat completion or completion request this server reads, checked with errors
/// that name the field. Unknown fields are ignored, as OpenAI-compatible servers commonly do; the
/// extension object <c>"superficial": {"alpha": 0.5}</c> sets the head's alpha for this request.
/// </summary>
public sealed record OpenAiRequest
{
    public required string Model { get; init; }
    /// <summary>Chat messages (chat completions) or null.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary>The prompt text (completions) or null.</summary>
    public string? Prompt { get; init; }
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int? MaxTokens { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public long Seed { get; init; }
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public double? Alpha { get; init; }

    public GenerationOptions Options(int maxTokens) => new()
    {
        MaxNewTokens = maxTokens, Temperature = Temperature, TopP = TopP, Seed = Seed, StopStrings = Stop,
    };

    static readonly string[] Roles = ["system", "user", "assistant"];

    /// <summary>Reads a request body (already parsed as JSON); <paramref name="chat"/> selects chat completions over completions.</summary>
    public static OpenAiRequest Parse(JsonElement root, bool chat)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad("the request body must be a JSON object.", null);
        var model = String(root, "model") ?? throw Bad("model is required: the name of one of the server's models (GET /v1/models).", "model");
        IReadOnlyList<ChatMessage>? messages = null;
        string? prompt = null;
        if (chat)
        {
            if (!root.TryGetProperty("messages", out var ms) || ms.ValueKind != JsonValueKind.Array)
                throw Bad("messages is required: an array of {role, content} objects.", "messages");
            var list = new List<ChatMessage>();
            int i = 0;
            foreach (var m in ms.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object) throw Bad($"messages[{i}] must be an object with role and content.", $"messages[{i}]");
                var role = String(m, "role", $"messages[{i}].role") ?? throw Bad($"messages[{i}].role is required.", $"messages[{i}].role");
                if (role == "developer") role = "system";
                if (!Roles.Contains(role)) throw Bad($"messages[{i}].role is \"{role}\"; expected system, user or assistant.", $"messages[{i}].role");
                list.Add(new ChatMessage(role, Content(m, i)));
                i++;
            }
            if (list.Count == 0) throw Bad("messages is empty: give at least one message.", "messages");
            messages = list;
        }
        else
        {
            if (!root.TryGetProperty("prompt", out var p)) throw Bad("prompt is required.", "prompt");
            prompt = p.ValueKind switch
            {
                JsonValueKind.String => p.GetString()!,
                JsonValueKind.Array when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String => p[0].GetString()!,
                _ => throw Bad("prompt must be a string (or an array of one string).", "prompt"),
            };
        }
        if (root.TryGetProperty("n", out var n) && n.ValueKind != JsonValueKind.Null && (n.ValueKind != JsonValueKind.Number || n.GetDouble() != 1))
            throw Bad("n must be 1: this server returns one choice per request.", "n");
        double? alpha = null;
        if (root.TryGetProperty("superficial", out var ext) && ext.ValueKind != JsonValueKind.Null)
        {
            if (ext.ValueKind != JsonValueKind.Object) throw Bad("superficial must be an object, e.g. {\"alpha\": 0.5}.", "superficial");
            alpha = Number(ext, "alpha", "superficial.alpha");
        }
        var streamOptions = root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object ? so : default;
        return new OpenAiRequest
        {
            Model = model, Messages = messages, Prompt = prompt,
            Temperature = Number(root, "temperature") ?? 1.0,
            TopP = Number(root, "top_p") ?? 1.0,
            MaxTokens = Int(root, "max_completion_tokens") ?? Int(root, "max_tokens"),
            Stop = Stops(root),
            Seed = root.TryGetProperty("seed", out var seed) && seed.ValueKind != JsonValueKind.Null
                ? (seed.TryGetInt64(out var s) ? s : throw Bad("seed must be an integer.", "seed"))
                : RandomNumberGenerator.GetInt32(int.MaxValue),
            Stream = Bool(root, "stream") ?? false,
            IncludeUsage = streamOptions.ValueKind == JsonValueKind.Object && (Bool(streamOptions, "include_usage", "stream_options.include_usage") ?? false),
            Alpha = alpha,
        };
    }

    static string Content(JsonElement m, int i)
    {
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null) return "";
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind == JsonValueKind.Array)
            return string.Concat(c.EnumerateArray().Select(part =>
                part.ValueKind == JsonValueKind.Object && String(part, "type") == "text" && String(part, "text") is { } t ? t
                    : throw Bad($"messages[{i}].content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported.", $"messages[{i}].content")));
        throw Bad($"messages[{i}].content must be a string or an array of text parts.", $"messages[{i}].content");
    }

    static IReadOnlyList<string> Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var s) || s.ValueKind == JsonValueKind.Null) return [];
        var stops = s.ValueKind switch
        {
            JsonValueKind.String => [s.GetString()!],
            JsonValueKind.Array => s.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw Bad("stop must hold strings.", "stop")).ToList(),
            _ => throw Bad("stop must be a string or an array of up to 4 strings.", "stop"),
        };
        if (stops.Count > 4) throw Bad($"stop has {stops.Count} strings; at most 4 are allowed.", "stop");
        if (stops.Any(x => x.Length == 0)) throw Bad("stop strings cannot be empty.", "stop");
        return stops;
    }

    static string? String(JsonElement o, string name, string? param = null) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad($"{param ?? name} must be a string.", param ?? name);

    static double? Number(JsonElement o, string name, string? param = null) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad($"{param ?? name} must be a number.", param ?? name);

    static int? Int(JsonElement o, string name) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Bad($"{name} must be an integer.", name);

    static bool? Bool(JsonElement o, string name, string? param = null) =>
        !o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad($"{param ?? name} must be true or false.", param ?? name);

    static ApiException Bad(string message, string? param) => new(400, message, param: param);
}
