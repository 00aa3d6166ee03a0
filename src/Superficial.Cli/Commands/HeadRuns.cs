using System.Globalization;
using Superficial.Alignment;

namespace Superficial.Cli.Commands;

/// <summary>train-head --seeds/--ranks: one head file per (rank, seed), named after the --out path.</summary>
internal static class HeadRuns
{
    /// <summary>
    /// The (path, options) of every head to train. Without --seeds/--ranks: the --out path alone. With them:
    /// HEAD-r&lt;rank&gt;-s&lt;seed&gt;.safetensors (only the parts given). --seeds vary the initialisation and the data
    /// order (<see cref="HeadTrainingOptions.InitSeed"/>); the held-out split stays that of --seed, so the heads are
    /// compared on the same positions.
    /// </summary>
    public static IReadOnlyList<(string Path, HeadTrainingOptions Options)> Plan(string outPath, HeadTrainingOptions o, string? seeds, string? ranks, int hidden)
    {
        var seedList = seeds is null ? null : List<int>(seeds, "--seeds", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : null);
        var rankList = ranks is null ? null : List<int>(ranks, "--ranks", s => s == "full" ? 0 : int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) && x >= 1 && x <= hidden ? x : null);
        if (rankList is null && o.Rank is int rank && (rank < 1 || rank > hidden))
            throw new ArgumentException($"--rank {rank} must be between 1 and the hidden size {hidden}.");
        if (seedList is null && rankList is null) return [(outPath, o)];
        var dir = Path.GetDirectoryName(outPath) ?? "";
        var stem = Path.GetFileNameWithoutExtension(outPath);
        var ext = Path.GetExtension(outPath) is { Length: > 0 } e ? e : ".safetensors";
        var runs = new List<(string, HeadTrainingOptions)>();
        foreach (var r in rankList ?? new List<int> { o.Rank ?? 0 })
            foreach (var s in seedList?.Select(x => (int?)x) ?? new int?[] { null })
            {
                var name = stem + (rankList is null ? "" : $"-r{(r == 0 ? "full" : r.ToString(CultureInfo.InvariantCulture))}") + (s is int k ? $"-s{k}" : "");
                runs.Add((Path.Combine(dir, name + ext), o with { Rank = r == 0 ? null : r, InitSeed = s ?? o.InitSeed }));
            }
        return runs;
    }

    static List<T> List<T>(string text, string flag, Func<string, T?> parse) where T : struct =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => parse(s) ?? throw new ArgumentException($"{flag}: \"{s}\" is not valid.")).Distinct().ToList() is { Count: > 0 } l ? l
            : throw new ArgumentException($"{flag}: give a comma-separated list.");
}
