using System.Text.Json;
using System.Text.Json.Serialization;
using Superficial.IO;

namespace Superficial.Evaluation;

/// <summary>
/// One scored output: a line of a predictions JSONL file. Besides the common fields, a task puts its
/// own fields (flattened at top level) under the reference implementation's names where they exist
/// (GSM8K: question/answer/model_output/prediction; AdvBench: instruction/response; ToxiGen:
/// text/label/target_groups/prediction), so files are readable by the reference's tooling.
/// </summary>
public sealed class PredictionRecord
{
    [JsonPropertyName("task")] public required string Task { get; init; }
    [JsonPropertyName("variant")] public required string Variant { get; init; }
    [JsonPropertyName("id")] public required string Id { get; init; }
    /// <summary>The prompt text exactly as the variant's model read it (chat-formatted or raw).</summary>
    [JsonPropertyName("prompt")] public required string Prompt { get; init; }
    [JsonPropertyName("output")] public required string Output { get; init; }
    [JsonPropertyName("score")] public double Score { get; init; }
    /// <summary>Task-specific fields, written flat at top level.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Fields { get; set; }

    /// <summary>The JSONL options every line is written with (<see cref="JsonLines.Options"/>).</summary>
    public static JsonSerializerOptions JsonOptions => JsonLines.Options;

    public string ToJsonLine() => JsonSerializer.Serialize(this, JsonOptions);
    public static PredictionRecord FromJsonLine(string line) =>
        JsonSerializer.Deserialize<PredictionRecord>(line, JsonOptions)
        ?? throw new JsonException("empty prediction record");
}
