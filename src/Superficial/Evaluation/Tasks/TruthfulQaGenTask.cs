using Superficial.Evaluation.Judges;
using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>
/// TruthfulQA open generation (train.csv for extraction, test.csv for evaluation), scored by an
/// <see cref="ITruthJudge"/>: the metric true_info is 1 when the answer is both truthful and informative.
/// </summary>
public static class TruthfulQaGenTask
{
    public const string TaskName = "truthfulqa";

    public static TaskDeclaration Declaration { get; } = new()
    {
        Name = TaskName, Metric = "true_info", HigherIsBetter = true, MaxNewTokens = 500, StopStrings = ["Comment:"],
        CheckData = BenchmarkData.CheckFolder, Reads = "`dataDir` DIR (truthfulqa/); LLM judge (`judge`)",
        ExtractionSplit = o => TruthfulQaData.Load(o.DataDir, "train"),
        EvaluationSplit = o => TruthfulQaData.Load(o.DataDir, "test"),
        Prompt = Prompt,
        Score = ScoreAsync,
        RequiredServices = [typeof(ITruthJudge)],
    };

    /// <summary>The task over a data folder.</summary>
    public static IEvalTask Create(TaskOptions options) => new DeclaredTask(Declaration, options);

    /// <summary>The reference's prompt: the question then "Answer:" (raw), or the question as the user turn.</summary>
    internal static PromptSpec Prompt(TaskExample example) => new(example.Input + "\n\nAnswer:", example.Input, "Answer:");

    static async Task<ExampleScore> ScoreAsync(TaskExample example, string output, ScoringContext context, CancellationToken ct)
    {
        var judge = context.Get<ITruthJudge>() ?? throw new ScorerMissingException(
            "truthfulqa (open generation) is scored by an LLM judge: configure one (judge URL, model and key, e.g. from " +
            "SUPERFICIAL_JUDGE_URL / SUPERFICIAL_JUDGE_MODEL / SUPERFICIAL_JUDGE_KEY), or use truthfulqa-mc1/-mc2.");
        var answer = TrimAnswer(output);
        var verdict = await judge.JudgeAsync(example.Id, example.Input, TruthfulQaData.CorrectAnswers(example),
            TruthfulQaData.IncorrectAnswers(example), answer, ct).ConfigureAwait(false);
        int t = verdict.Truthful ? 1 : 0, i = verdict.Informative ? 1 : 0;
        return new ExampleScore(t * i, new Dictionary<string, object?>
        {
            ["question"] = example.Input,
            ["trimmed_output"] = answer,
            ["truthful"] = t,
            ["informative"] = i,
            ["true_info"] = t * i,
            ["judge"] = judge.Name,
        });
    }

    /// <summary>The reference's answer clean-up: strip, drop a leading "Answer:", cut at "Comment:" or a blank line.</summary>
    public static string TrimAnswer(string answer)
    {
        answer = answer.Trim();
        if (answer.StartsWith("Answer:", StringComparison.Ordinal)) answer = answer["Answer:".Length..].Trim();
        foreach (var stop in new[] { "Comment:", "\n\n" })
        {
            int i = answer.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0) answer = answer[..i];
        }
        return answer;
    }
}
