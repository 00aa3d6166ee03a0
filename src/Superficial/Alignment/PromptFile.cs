using System.Text;
using System.Text.Json;
using Superficial.Generation;

namespace Superficial.Alignment;

/// <summary>
/// A JSONL file of extraction prompts: one object per line with a string "prompt" (or "raw" and "user"),
/// optional "id" (default line-N) and "response_prefix". Every error names the file and the line: text
/// that is not UTF-8, a line that is not a JSON object, a key given twice, a missing or empty prompt, an id
/// used twice.
/// </summary>
public static class PromptFile
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static IReadOnlyList<ExtractionPrompt> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: prompts file not found.", path);
        var bytes = File.ReadAllBytes(path);
        int start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        var prompts = new List<ExtractionPrompt>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int n = 1; start < bytes.Length; n++)
        {
            int nl = Array.IndexOf(bytes, (byte)'\n', start);
            int end = nl < 0 ? bytes.Length : nl;
            string line;
            try { line = Strict.GetString(bytes, start, end - start).TrimEnd('\r'); }
            catch (DecoderFallbackException e)
            {
                throw new InvalidDataException($"{path}:{n}: not valid UTF-8 (bad byte at column {e.Index + 1}); save the file as UTF-8.");
            }
            start = end + 1;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var prompt = ParseLine(line, $"{path}:{n}", $"line-{n}");
            if (ids.TryGetValue(prompt.Id, out var first))
                throw new InvalidDataException($"{path}:{n}: id \"{prompt.Id}\" was already used on line {first}; ids must be unique.");
            ids[prompt.Id] = n;
            prompts.Add(prompt);
        }
        return prompts;
    }

    static ExtractionPrompt ParseLine(string line, string where, string defaultId)
    {
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{where}: expected a JSON object, found {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}.");
            foreach (var p in doc.RootElement.EnumerateObject())
                if (!fields.TryAdd(p.Name, p.Value.Clone()))
                    throw new InvalidDataException($"{where}: key \"{p.Name}\" appears twice in the object.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{where}: not a JSON object ({e.Message})."); }

        string? Str(string k)
        {
            if (!fields.TryGetValue(k, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.String ? v.GetString()
                : throw new InvalidDataException($"{where}: \"{k}\" must be a string, found {v.ValueKind.ToString().ToLowerInvariant()}.");
        }
        var prompt = Str("prompt");
        var raw = Str("raw") ?? prompt;
        var user = Str("user") ?? prompt;
        if (raw is null || user is null) throw new InvalidDataException($"{where}: expected a string field \"prompt\" (or \"raw\" and \"user\").");
        if (raw.Length == 0 || user.Length == 0)
            throw new InvalidDataException($"{where}: the prompt is empty; every extraction prompt needs text for the base model to read.");
        var id = Str("id") ?? defaultId;
        if (id.Length == 0) throw new InvalidDataException($"{where}: \"id\" is empty.");
        return new ExtractionPrompt(id, new PromptSpec(raw, user, Str("response_prefix")));
    }
}
