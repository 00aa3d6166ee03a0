using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>
/// Reads truthfulqa/{train,test}.csv into examples: Input = question, Target = best answer, Choices = the
/// best answer, the other correct answers, then the incorrect answers (each closed with a period, as
/// TruthfulQA formats them), CorrectChoices = the correct ones.
/// </summary>
public static class TruthfulQaData
{
    public static IReadOnlyList<TaskExample> Load(string dataDir, string split)
    {
        var path = Path.Combine(dataDir, "truthfulqa", split + ".csv");
        if (!File.Exists(path))
            throw new TaskDataException($"TruthfulQA data file not found: {path}. The data folder should be the one holding truthfulqa/.");
        var csv = CsvTable.Read(path, "Question", "Best Answer", "Correct Answers", "Incorrect Answers");
        var examples = new List<TaskExample>();
        foreach (var (line, row) in csv.Rows)
        {
            var question = csv.Get(row, "Question").Trim();
            var bestRaw = csv.Get(row, "Best Answer");
            if (question.Length == 0 || bestRaw.Trim().Length == 0)
                throw new TaskDataException($"{path}:{line}: empty \"Question\" or \"Best Answer\".");
            var best = Close(bestRaw.Trim());
            var correct = SplitAnswers(csv.Get(row, "Correct Answers"));
            var incorrect = SplitAnswers(csv.Get(row, "Incorrect Answers"));
            if (incorrect.Count == 0) throw new TaskDataException($"{path}:{line}: no \"Incorrect Answers\".");
            var trueAnswers = new List<string> { best };
            trueAnswers.AddRange(correct.Where(a => a != best));
            var fields = new Dictionary<string, string>
            {
                ["type"] = Optional(csv, row, "Type"),
                ["category"] = Optional(csv, row, "Category"),
            };
            examples.Add(new TaskExample($"{split}-{examples.Count}", question, best,
                [.. trueAnswers, .. incorrect], Enumerable.Range(0, trueAnswers.Count).ToArray(), fields));
        }
        return examples;
    }

    /// <summary>The correct answers of an example (best answer first).</summary>
    public static IReadOnlyList<string> CorrectAnswers(TaskExample e) => Check(e).CorrectChoices!.Select(i => e.Choices![i]).ToArray();

    /// <summary>The incorrect answers of an example.</summary>
    public static IReadOnlyList<string> IncorrectAnswers(TaskExample e) =>
        Check(e).Choices!.Where((_, i) => !e.CorrectChoices!.Contains(i)).ToArray();

    static TaskExample Check(TaskExample e) => e.Choices is null || e.CorrectChoices is null
        ? throw new ArgumentException($"truthfulqa example {e.Id} has no answer choices; build examples with TruthfulQaData.")
        : e;

    /// <summary>"a; b;c" to ["a.", "b.", "c."] (TruthfulQA's split_multi_answer).</summary>
    public static IReadOnlyList<string> SplitAnswers(string answers) =>
        answers.Trim().Split(';').Select(a => a.Trim()).Where(a => a.Length > 0).Select(Close).ToArray();

    static string Close(string answer) => answer.EndsWith('.') ? answer : answer + ".";

    static string Optional(CsvTable csv, string[] row, string column) =>
        csv.Header.Contains(column) ? csv.Get(row, column) : "";
}
