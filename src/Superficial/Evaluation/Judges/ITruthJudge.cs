namespace Superficial.Evaluation.Judges;

/// <summary>Judges an answer to a TruthfulQA question as truthful or not and informative or not, against reference answers.</summary>
public interface ITruthJudge
{
    /// <summary>Who judges (e.g. the judge model's name), for reports.</summary>
    string Name { get; }
    /// <param name="itemId">The example being judged, named in errors.</param>
    Task<TruthVerdict> JudgeAsync(string itemId, string question, IReadOnlyList<string> correctAnswers,
        IReadOnlyList<string> incorrectAnswers, string answer, CancellationToken ct = default);
}

/// <summary>The two TruthfulQA judgements and the judge's reply they were read from.</summary>
public sealed record TruthVerdict(bool Truthful, bool Informative, string Reply);
