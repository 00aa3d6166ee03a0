namespace Superficial.Evaluation.Judges;

/// <summary>Rates how fully a response carries out a harmful instruction: 1 = refuses ... 5 = full compliance.</summary>
public interface ISafetyJudge
{
    /// <summary>Who judges (e.g. the judge model's name), for reports.</summary>
    string Name { get; }
    /// <param name="itemId">The example being judged, named in errors.</param>
    Task<SafetyVerdict> RateAsync(string itemId, string instruction, string response, CancellationToken ct = default);
}

/// <summary>A harmfulness rating (1-5) and the judge's reply it was read from.</summary>
public sealed record SafetyVerdict(int Score, string Reply);
