using System.Text.Json;
using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>One output read back from a predictions file, matched to its task example.</summary>
/// <param name="Prompt">The prompt as recorded ("" when the file does not record it, as the reference's files do not).</param>
/// <param name="Line">1-based line in the file.</param>
public sealed record ImportedPrediction(TaskExample Example, string Output, string Variant, string Prompt, int Line);

/// <summary>
/// Reads predictions JSONL for re-scoring: our own <see cref="PredictionRecord"/> lines (matched by id) or the
/// reference implementation's predictions.jsonl (GSM: question/answer/model_output; AdvBench:
/// instruction/response; ToxiGen: text/prediction), matched to the task's examples by their text.
/// </summary>
public static class PredictionImport
{
    static readonly string[] TextFields = ["question", "instruction", "text", "Question"];
    static readonly string[] OutputFields = ["model_output", "response", "prediction", "output"];

    /// <param name="variant">Variant name given to lines that do not record one (the reference's files).</param>
    public static IReadOnlyList<ImportedPrediction> Read(IEvalTask task, string path, string variant = "imported")
    {
        if (!File.Exists(path)) throw new TaskDataException($"Predictions file not found: {path}");
        var examples = task.EvaluationSplit().Concat(task.ExtractionSplit()).ToArray();
        var byId = new Dictionary<string, TaskExample>(StringComparer.Ordinal);
        var byText = new Dictionary<string, Queue<TaskExample>>(StringComparer.Ordinal);
        foreach (var e in examples)
        {
            byId.TryAdd(e.Id, e);
            var key = e.Input.Trim();
            if (!byText.TryGetValue(key, out var q)) byText[key] = q = new Queue<TaskExample>();
            q.Enqueue(e);
        }

        var result = new List<ImportedPrediction>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new TaskDataException($"{path}:{lineNo}: not a JSON object ({e.Message})."); }
            using var _ = doc;
            var obj = doc.RootElement;
            if (obj.ValueKind != JsonValueKind.Object) throw new TaskDataException($"{path}:{lineNo}: not a JSON object.");

            if (Str(obj, "id") is { } id && Str(obj, "output") is { } ownOutput)
            {
                if (Str(obj, "task") is { } t && !string.Equals(t, task.Name, StringComparison.OrdinalIgnoreCase))
                    throw new TaskDataException($"{path}:{lineNo}: a prediction of task \"{t}\", not \"{task.Name}\".");
                if (!byId.TryGetValue(id, out var ex))
                    throw new TaskDataException($"{path}:{lineNo}: no {task.Name} example has id \"{id}\" in the data folder given.");
                result.Add(new ImportedPrediction(ex, ownOutput, Str(obj, "variant") ?? variant, Str(obj, "prompt") ?? "", lineNo));
                continue;
            }

            var textField = TextFields.FirstOrDefault(f => Str(obj, f) is not null)
                ?? throw new TaskDataException($"{path}:{lineNo}: no example text: expected one of {string.Join(", ", TextFields)} (or our id/output fields).");
            var outputField = OutputFields.FirstOrDefault(f => Str(obj, f) is not null)
                ?? throw new TaskDataException($"{path}:{lineNo}: no model output: expected one of {string.Join(", ", OutputFields)}.");
            var text = Str(obj, textField)!.Trim();
            if (!byText.TryGetValue(text, out var queue))
                throw new TaskDataException($"{path}:{lineNo}: its \"{textField}\" matches no {task.Name} example in the data folder given: \"{Excerpt(text)}\".");
            // Repeated texts take successive examples; once used up the last one is reused.
            var example = queue.Count > 1 ? queue.Dequeue() : queue.Peek();
            result.Add(new ImportedPrediction(example, Str(obj, outputField)!, variant, "", lineNo));
        }
        return result;
    }

    static string? Str(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    static string Excerpt(string s) => s.Length <= 120 ? s : s[..120] + "...";
}
