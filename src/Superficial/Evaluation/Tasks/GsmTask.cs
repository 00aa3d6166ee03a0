using System.Text.Json;
using System.Text.RegularExpressions;
using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>
/// GSM8K grade-school math (gsm/train.jsonl's first 1000 for extraction, test.jsonl for evaluation),
/// scored as the reference does: the last number of the trimmed output, exact match with the number
/// after "####" (case and punctuation ignored, as its exact_match metric does).
/// </summary>
public static partial class GsmTask
{
    public const string TaskName = "gsm";
    /// <summary>How many train problems the reference extracts from.</summary>
    public const int ExtractionCount = 1000;

    /// <summary>The reference trims the output at these (<see cref="TrimOutput"/>); stopping there gives the same text sooner.</summary>
    public static readonly IReadOnlyList<string> Stops = ["Answer the following question", "Question:", "Comment:"];

    public static TaskDeclaration Declaration { get; } = new()
    {
        Name = TaskName, Metric = "accuracy", HigherIsBetter = true, MaxNewTokens = 512, StopStrings = Stops,
        CheckData = BenchmarkData.CheckFolder, Reads = "`dataDir` DIR (gsm/)",
        ExtractionSplit = o => Load(o, "train").Take(ExtractionCount).ToArray(),
        EvaluationSplit = o => Load(o, "test"),
        Prompt = BuildPrompt,
        Score = (e, output, _, _) => Task.FromResult(Score(e, output)),
    };

    /// <summary>The task over a data folder.</summary>
    public static IEvalTask Create(TaskOptions options) => new DeclaredTask(Declaration, options);

    static IReadOnlyList<TaskExample> Load(TaskOptions options, string split)
    {
        var path = BenchmarkData.File(options, TaskName, "gsm", split + ".jsonl");
        var examples = new List<TaskExample>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string question, answer;
            try
            {
                using var doc = JsonDocument.Parse(line);
                question = doc.RootElement.GetProperty("question").GetString() ?? "";
                answer = doc.RootElement.GetProperty("answer").GetString() ?? "";
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new TaskDataException($"{path}:{lineNo}: expected a JSON object with string fields \"question\" and \"answer\" ({e.Message}).");
            }
            int hash = answer.IndexOf("####", StringComparison.Ordinal);
            if (hash < 0) throw new TaskDataException($"{path}:{lineNo}: the answer has no \"#### <number>\" final line.");
            var target = RemoveThousandsSeparators(answer[(hash + 4)..].Split("####")[0].Trim());
            examples.Add(new TaskExample($"{split}-{examples.Count}", question, target));
        }
        return examples;
    }

    static PromptSpec BuildPrompt(TaskExample example)
    {
        var user = "Answer the following question.\n\nQuestion: " + example.Input.Trim();
        return new PromptSpec(user + "\nAnswer:", user, "Answer:");
    }

    static ExampleScore Score(TaskExample example, string output)
    {
        var trimmed = TrimOutput(output);
        var prediction = ExtractAnswer(trimmed);
        var target = example.Target ?? throw new ArgumentException($"gsm example {example.Id} has no target answer.");
        int correct = ExactMatch(prediction, target) ? 1 : 0;
        return new ExampleScore(correct, new Dictionary<string, object?>
        {
            ["question"] = example.Input,
            ["answer"] = target,
            ["model_output"] = trimmed,
            ["prediction"] = prediction,
        });
    }

    /// <summary>Cuts the output before the first prompt-like continuation, as the reference does.</summary>
    public static string TrimOutput(string output)
    {
        foreach (var prefix in Stops)
        {
            int i = output.IndexOf(prefix, StringComparison.Ordinal);
            if (i >= 0) output = output[..i];
        }
        return output;
    }

    /// <summary>The last number in the text after removing thousands separators; the whole text if it has none.</summary>
    public static string ExtractAnswer(string text)
    {
        text = RemoveThousandsSeparators(text);
        var numbers = Number().Matches(text);
        return numbers.Count > 0 ? numbers[^1].Value : text;
    }

    /// <summary>Exact match ignoring case and ASCII punctuation (the reference's metric settings).</summary>
    public static bool ExactMatch(string prediction, string target) =>
        string.Equals(StripPunctuation(prediction.ToLowerInvariant()), StripPunctuation(target.ToLowerInvariant()), StringComparison.Ordinal);

    static string RemoveThousandsSeparators(string s) => Thousands().Replace(s, "$1$2");

    static string StripPunctuation(string s) => string.Concat(s.Where(c => !Punctuation.Contains(c)));
    const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    [GeneratedRegex(@"(\d),(\d)")] private static partial Regex Thousands();
    [GeneratedRegex(@"[-+]?\d*\.\d+|\d+")] private static partial Regex Number();
}
