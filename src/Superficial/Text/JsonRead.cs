using System.Text.Json;

namespace Superficial.Text;

/// <summary>Small JSON accessors whose errors name the file and field.</summary>
internal static class JsonRead
{
    public static JsonDocument Parse(string path) => Parse(path, File.ReadAllBytes(path));

    /// <summary>As <see cref="Parse(string)"/>, on bytes already read from <paramref name="path"/> (named in errors).</summary>
    public static JsonDocument Parse(string path, byte[] bytes)
    {
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }

    public static JsonElement? Get(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string? Str(JsonElement obj, string name, string where) => Get(obj, name) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(where, name, "a string", v)
        : null;

    public static bool? Bool(JsonElement obj, string name, string where) => Get(obj, name) is { } v
        ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(where, name, "true or false", v)
        : null;

    public static int? Int(JsonElement obj, string name, string where) => Get(obj, name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Bad(where, name, "an integer", v)
        : null;

    public static JsonElement Req(JsonElement obj, string name, string where, JsonValueKind kind) =>
        Get(obj, name) is { } v && v.ValueKind == kind ? v
        : throw new TokenizerFormatException($"{where}: field '{name}' must be {KindName(kind)}, got {(Get(obj, name) is { } g ? KindName(g.ValueKind) : "nothing")}.");

    public static TokenizerFormatException Bad(string where, string name, string expected, JsonElement got) =>
        new($"{where}: field '{name}' must be {expected}, got {KindName(got.ValueKind)} {Short(got)}.");

    static string Short(JsonElement e) { var t = e.GetRawText(); return t.Length > 60 ? t[..60] + "…" : t; }

    static string KindName(JsonValueKind k) => k switch
    {
        JsonValueKind.Object => "an object", JsonValueKind.Array => "an array", JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number", JsonValueKind.True or JsonValueKind.False => "a boolean", _ => "null",
    };
}
