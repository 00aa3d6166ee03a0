using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>How a task is built: where its data lives and how much of its evaluation split to use.</summary>
/// <param name="DataDir">The data folder holding advbench/, gsm/, toxigen/, truthfulqa/ (e.g. shared/data).</param>
public sealed record TaskOptions(string DataDir)
{
    /// <summary>Evaluate only this many examples (null: all). Quick runs.</summary>
    public int? Limit { get; init; }

    /// <summary>With <see cref="Limit"/>: draw a random sample with this seed (kept in data order) instead of the first N.</summary>
    public int? SampleSeed { get; init; }

    /// <summary>The examples a run evaluates: all, the first <see cref="Limit"/>, or a seeded sample of that size.</summary>
    public IReadOnlyList<TaskExample> Apply(IReadOnlyList<TaskExample> examples)
    {
        if (Limit is not { } limit) return examples;
        if (limit < 0) throw new ArgumentOutOfRangeException(nameof(Limit), limit, "The example limit must be zero or more.");
        if (limit >= examples.Count) return examples;
        if (SampleSeed is not { } seed) return examples.Take(limit).ToArray();

        // Partial Fisher-Yates over indices: the same seed picks the same examples on every run.
        var rng = new Random(seed);
        var idx = Enumerable.Range(0, examples.Count).ToArray();
        for (int i = 0; i < limit; i++)
        {
            int j = rng.Next(i, idx.Length);
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        return idx.Take(limit).Order().Select(i => examples[i]).ToArray();
    }
}
