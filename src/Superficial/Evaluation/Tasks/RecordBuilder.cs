using System.Text.Json;
using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>Turns a scored output into a <see cref="PredictionRecord"/>: the example's fields, then the score's details, flat at top level.</summary>
public static class RecordBuilder
{
    static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "task", "variant", "id", "prompt", "output", "score" };

    public static PredictionRecord Build(IEvalTask task, string variant, TaskExample example, string prompt, string output, ExampleScore score)
    {
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (example.Fields is not null)
            foreach (var (k, v) in example.Fields) fields[Key(k)] = JsonSerializer.SerializeToElement(v, PredictionRecord.JsonOptions);
        if (score.Details is not null)
            foreach (var (k, v) in score.Details) fields[Key(k)] = JsonSerializer.SerializeToElement(v, PredictionRecord.JsonOptions);
        return new PredictionRecord
        {
            Task = task.Name, Variant = variant, Id = example.Id, Prompt = prompt, Output = output,
            Score = score.Value, Fields = fields.Count > 0 ? fields : null,
        };
    }

    // A detail named like a record property would be written twice; keep it under a distinct name.
    static string Key(string k) => Reserved.Contains(k) ? "detail_" + k : k;
}
