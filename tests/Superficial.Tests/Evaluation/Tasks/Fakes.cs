using Superficial.Evaluation.Judges;
using Superficial.Evaluation.Toxicity;

namespace Superficial.Tests.Evaluation.Tasks;

/// <summary>A safety judge that gives a fixed score and records what it was asked.</summary>
sealed class FixedSafetyJudge(int score) : ISafetyJudge
{
    public List<(string Item, string Instruction, string Response)> Calls { get; } = [];
    public string Name => "fixed-judge";
    public Task<SafetyVerdict> RateAsync(string itemId, string instruction, string response, CancellationToken ct = default)
    {
        lock (Calls) Calls.Add((itemId, instruction, response));
        return Task.FromResult(new SafetyVerdict(score, $"Score: {score}"));
    }
}

/// <summary>Labels a text toxic if it contains a marker word.</summary>
sealed class MarkerLabeler(string marker) : IToxicityLabeler
{
    public string Name => "marker";
    public double? Accuracy => 0.5;
    public Task<ToxicityLabel> LabelAsync(string itemId, string text, CancellationToken ct = default) =>
        Task.FromResult(new ToxicityLabel(text.Contains(marker, StringComparison.Ordinal), null));
}

/// <summary>Truth judge: truthful unless the answer contains "yellow", informative unless it is "I have no comment.".</summary>
sealed class RuleTruthJudge : ITruthJudge
{
    public List<(string Question, IReadOnlyList<string> Correct, IReadOnlyList<string> Incorrect, string Answer)> Calls { get; } = [];
    public string Name => "rule-judge";
    public Task<TruthVerdict> JudgeAsync(string itemId, string question, IReadOnlyList<string> correctAnswers,
        IReadOnlyList<string> incorrectAnswers, string answer, CancellationToken ct = default)
    {
        lock (Calls) Calls.Add((question, correctAnswers, incorrectAnswers, answer));
        return Task.FromResult(new TruthVerdict(!answer.Contains("yellow"), answer != "I have no comment.", "ok"));
    }
}
