using Superficial.Evaluation;
using Superficial.Evaluation.Tasks;

namespace Superficial.Cli;

/// <summary>
/// Builds any registered task by name for the command line: real benchmarks read the data folder (--data),
/// the organism's tasks (registered by Program) read an organism folder (--organism).
/// </summary>
internal static class TaskCatalog
{
    public const string OrganismPrefix = "organism-";

    public static IReadOnlyList<string> KnownNames => TaskRegistry.KnownNames;

    /// <summary>What `superficial tasks` lists about a task.</summary>
    public sealed record TaskInfo(string Name, string Metric, bool HigherIsBetter, TaskKind Kind, string Needs);

    /// <summary>Every known task with its metric, direction, kind and the data it reads (no data is read here).</summary>
    public static IReadOnlyList<TaskInfo> Describe()
    {
        var anyDir = Path.GetTempPath(); // tasks read their data lazily; the constructor only checks the folder exists
        return KnownNames.Select(n =>
        {
            var t = TaskRegistry.Create(n, new TaskOptions(anyDir));
            var reads = t is DeclaredTask d ? d.Declaration.Reads : "";
            return new TaskInfo(t.Name, t.Metric, t.HigherIsBetter, t.Kind, FlagNames.Map(reads));
        }).ToArray();
    }

    /// <summary>The known name closest to <paramref name="name"/> (edit distance at most a third of its length), for "did you mean".</summary>
    public static string? Suggest(string name)
    {
        var best = KnownNames.Select(k => (k, d: EditDistance(name.ToLowerInvariant(), k.ToLowerInvariant()))).OrderBy(x => x.d).ThenBy(x => x.k, StringComparer.Ordinal).FirstOrDefault();
        return best.k is not null && best.d <= Math.Max(2, name.Length / 3) ? best.k : null;
    }

    static int EditDistance(string a, string b)
    {
        var prev = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var cur = new int[b.Length + 1];
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            prev = cur;
        }
        return prev[b.Length];
    }

    public static IEvalTask Create(string name, string? dataDir, string? organismDir, int? limit = null)
    {
        if (!KnownNames.Contains(name, StringComparer.OrdinalIgnoreCase))
            throw new ArgumentException($"unknown task \"{name}\"" + (Suggest(name) is { } s ? $"; did you mean \"{s}\"?" : ".") +
                                        " List them with: superficial tasks.");
        if (name.StartsWith(OrganismPrefix, StringComparison.OrdinalIgnoreCase))
        {
            var dir = organismDir ?? throw new ArgumentException($"task {name} needs --organism DIR (a folder made by superficial organism build).");
            return TaskRegistry.Create(name, new TaskOptions(dir) { Limit = limit });
        }
        var data = dataDir ?? throw new ArgumentException($"task {name} needs --data DIR, the folder with advbench/, gsm/, toxigen/, truthfulqa/.");
        return TaskRegistry.Create(name, new TaskOptions(data) { Limit = limit });
    }
}
