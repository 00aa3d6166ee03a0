using System.Text.Json;

namespace Superficial.Evaluation.Stats;

/// <summary>A group's mean score and how many examples it averages.</summary>
public sealed record GroupRate(double Mean, int Count);

/// <summary>
/// Per-group means of prediction scores (ToxiGen's target groups): the one place the summary's group table
/// and re-scoring's per_group breakdown are computed.
/// </summary>
public static class GroupMeans
{
    /// <summary>The per-example detail that names an example's group(s).</summary>
    public const string Field = "group";

    /// <summary>
    /// The groups of a record: its "group" detail (a string, or a list for examples of several groups); without
    /// one, the first of the reference's "target_groups".
    /// </summary>
    public static IReadOnlyList<string> Of(PredictionRecord r)
    {
        if (r.Fields is null) return [];
        if (r.Fields.TryGetValue(Field, out var g))
            return g.ValueKind switch
            {
                JsonValueKind.String => [g.GetString()!],
                JsonValueKind.Array => g.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText()).ToArray(),
                JsonValueKind.Null => [],
                _ => [g.GetRawText()],
            };
        if (r.Fields.TryGetValue("target_groups", out var t) && t.ValueKind == JsonValueKind.Array && t.GetArrayLength() > 0 && t[0].ValueKind == JsonValueKind.String)
            return [t[0].GetString()!];
        return [];
    }

    /// <summary>Mean score and count per group, groups in ordinal order; records of no group are left out.</summary>
    public static IReadOnlyDictionary<string, GroupRate> Compute(IEnumerable<PredictionRecord> records)
    {
        var sums = new SortedDictionary<string, (double Sum, int N)>(StringComparer.Ordinal);
        foreach (var r in records)
            foreach (var group in Of(r))
            {
                sums.TryGetValue(group, out var s);
                sums[group] = (s.Sum + r.Score, s.N + 1);
            }
        return sums.ToDictionary(kv => kv.Key, kv => new GroupRate(kv.Value.Sum / kv.Value.N, kv.Value.N));
    }
}
