namespace Superficial.Analysis;

/// <summary>
/// Buckets of the position in the response (0-based index of the generated token): the first four
/// positions alone, then doubling ranges, so "how many tokens deep" reads directly off the table.
/// </summary>
public static class PositionBuckets
{
    /// <summary>First position of each bucket; the last bucket is open-ended.</summary>
    public static readonly int[] Starts = [0, 1, 2, 3, 4, 8, 16, 32, 64];

    public static int Count => Starts.Length;

    public static int Of(int position)
    {
        if (position < 0) throw new ArgumentOutOfRangeException(nameof(position), position, "positions start at 0.");
        for (int b = Starts.Length - 1; b >= 0; b--) if (position >= Starts[b]) return b;
        return 0;
    }

    public static string Label(int bucket) =>
        bucket == Starts.Length - 1 ? $"{Starts[bucket]}+"
        : Starts[bucket + 1] - Starts[bucket] == 1 ? $"{Starts[bucket]}" : $"{Starts[bucket]}-{Starts[bucket + 1] - 1}";
}
