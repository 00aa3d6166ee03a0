using System.Text.Json.Nodes;

namespace Superficial.IO;

/// <summary>The fields where two JSON documents differ, as one short line ("settings.top_k: 64 here, 16 requested").</summary>
public static class JsonDiff
{
    public static IReadOnlyList<(string Path, string? Existing, string? Requested)> Differences(JsonNode? existing, JsonNode? requested)
    {
        var list = new List<(string, string?, string?)>();
        Walk("", existing, requested, list);
        return list;
    }

    /// <summary>e.g. "settings.top_k is 64 in the folder but 16 now; prompts.count is 6 in the folder but 4 now".</summary>
    public static string Describe(JsonNode? existing, JsonNode? requested, int max = 8)
    {
        var d = Differences(existing, requested);
        var shown = d.Take(max).Select(x => $"{x.Path} is {x.Existing ?? "absent"} in the folder but {x.Requested ?? "absent"} now");
        return string.Join("; ", shown) + (d.Count > max ? $"; and {d.Count - max} more" : "");
    }

    static void Walk(string path, JsonNode? a, JsonNode? b, List<(string, string?, string?)> into)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                Walk(path.Length == 0 ? key : $"{path}.{key}", oa[key], ob[key], into);
            return;
        }
        var sa = a?.ToJsonString();
        var sb = b?.ToJsonString();
        if (sa != sb) into.Add((path, Short(sa), Short(sb)));
    }

    static string? Short(string? s) => s is { Length: > 80 } ? s[..77] + "..." : s;
}
