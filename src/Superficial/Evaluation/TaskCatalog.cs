using Superficial.Evaluation.Tasks;

namespace Superficial.Evaluation;

/// <summary>
/// Builds any task by name for the command line: real benchmarks read the data folder (--data),
/// the organism's tasks read an organism folder (--organism).
/// </summary>
public static class TaskCatalog
{
    public const string OrganismPrefix = "organism-";

    public static IReadOnlyList<string> KnownNames
    {
        get { Organism.OrganismTasks.EnsureRegistered(); return TaskRegistry.KnownNames; }
    }

    public static IEvalTask Create(string name, string? dataDir, string? organismDir, int? limit = null)
    {
        if (name.StartsWith(OrganismPrefix, StringComparison.OrdinalIgnoreCase))
        {
            Organism.OrganismTasks.EnsureRegistered();
            var dir = organismDir ?? throw new ArgumentException($"task {name} needs --organism DIR (a folder made by superficial organism build).");
            return TaskRegistry.Create(name, new TaskOptions(dir) { Limit = limit });
        }
        var data = dataDir ?? throw new ArgumentException($"task {name} needs --data DIR, the folder with advbench/, gsm/, toxigen/, truthfulqa/.");
        return TaskRegistry.Create(name, new TaskOptions(data) { Limit = limit });
    }
}
