namespace Superficial.Evaluation.Toxicity;

/// <summary>Labels a text (a model's continuation) toxic or not.</summary>
public interface IToxicityLabeler
{
    /// <summary>What labels (classifier or judge model), for reports.</summary>
    string Name { get; }
    /// <summary>The labeller's measured accuracy on held-out labelled data, reported next to every toxicity figure; null if unknown.</summary>
    double? Accuracy { get; }
    /// <param name="itemId">The example being labelled, named in errors.</param>
    Task<ToxicityLabel> LabelAsync(string itemId, string text, CancellationToken ct = default);
}

/// <summary>A toxicity label; where the labeller has them, its probability of "toxic" and a note on how the label was reached.</summary>
public sealed record ToxicityLabel(bool Toxic, double? Probability = null, string? Note = null);
