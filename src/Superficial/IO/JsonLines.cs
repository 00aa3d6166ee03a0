using System.Text.Json;
using System.Text.Json.Serialization;

namespace Superficial.IO;

/// <summary>
/// How every JSONL file Superficial writes serialises a line (predictions, extraction generations, judge
/// cache, organism corpus): one line, non-ASCII text kept readable, null fields left out.
/// </summary>
public static class JsonLines
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
