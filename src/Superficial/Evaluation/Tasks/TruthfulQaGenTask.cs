using Superficial.Evaluation.Judges;
using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>
/// TruthfulQA open generation (train.csv for extraction, test.csv for evaluation), scored by an
/// <see cref="ITruthJudge"/>: the metric true_info is 1 when the answer is both truthful and informative.
/// </summary>
public sealed class TruthfulQaGenTask(TaskOptions options) : EvalTaskBase(options)
{
    public const string TaskName = "truthfulqa";

    public override string Name => TaskName;
    public override string Metric => "true_info";
    public override bool HigherIsBetter => true;
    public override IReadOnlyList<Type> RequiredServices { get; } = [typeof(ITruthJudge)];
    public override int MaxNewTokens => 500;
    public override IReadOnlyList<string> StopStrings { get; } = ["Comment:"];

    protected override IReadOnlyList<TaskExample> LoadExtraction() => TruthfulQaData.Load(Options.DataDir, "train");
    protected override IReadOnlyList<TaskExample> LoadEvaluation() => TruthfulQaData.Load(Options.DataDir, "test");

    public override PromptSpec BuildPrompt(TaskExample example) => Prompt(example);

    /// <summary>The reference's prompt: the question then "Answer:" (raw), or the question as the user turn.</summary>
    internal static PromptSpec Prompt(TaskExample example) => new(example.Input + "\n\nAnswer:", example.Input, "Answer:");

    public override async Task<ExampleScore> ScoreAsync(TaskExample example, string output, ScoringContext context, CancellationToken ct = default)
    {
        var judge = context.Get<ITruthJudge>() ?? throw new ScorerMissingException(
            "truthfulqa (open generation) is scored by an LLM judge: run with --judge (judge URL, model and key from the " +
            "options or SUPERFICIAL_JUDGE_URL / SUPERFICIAL_JUDGE_MODEL / SUPERFICIAL_JUDGE_KEY), or use truthfulqa-mc1/-mc2.");
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
