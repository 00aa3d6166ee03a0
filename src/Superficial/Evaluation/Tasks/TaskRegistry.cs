namespace Superficial.Evaluation.Tasks;

/// <summary>
/// Builds tasks by name (the CLI's --task). The benchmark tasks are registered here; other parts of the
/// library (e.g. the organism's tasks) add theirs with <see cref="Register"/>.
/// </summary>
public static class TaskRegistry
{
    static readonly object Gate = new();
    static readonly Dictionary<string, Func<TaskOptions, IEvalTask>> Factories = new(StringComparer.OrdinalIgnoreCase)
    {
        [AdvBenchTask.TaskName] = AdvBenchTask.Create,
        [ToxiGenTask.TaskName] = ToxiGenTask.Create,
        [GsmTask.TaskName] = GsmTask.Create,
        [TruthfulQaGenTask.TaskName] = TruthfulQaGenTask.Create,
        [TruthfulQaMcTask.Mc1Name] = o => TruthfulQaMcTask.Create(o, TruthfulQaMcMetric.Mc1),
        [TruthfulQaMcTask.Mc2Name] = o => TruthfulQaMcTask.Create(o, TruthfulQaMcMetric.Mc2),
    };

    /// <summary>Registered task names, sorted.</summary>
    public static IReadOnlyList<string> KnownNames
    {
        get { lock (Gate) return Factories.Keys.Order(StringComparer.Ordinal).ToArray(); }
    }

    /// <summary>Adds a task. A name can be registered once; registering it again with <paramref name="replace"/> swaps the factory.</summary>
    public static void Register(string name, Func<TaskOptions, IEvalTask> factory, bool replace = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        lock (Gate)
        {
            if (!replace && Factories.ContainsKey(name))
                throw new InvalidOperationException($"A task named \"{name}\" is already registered.");
            Factories[name] = factory;
        }
    }

    /// <summary>Adds a declared task (see <see cref="Register(string, Func{TaskOptions, IEvalTask}, bool)"/>); the declaration is checked now.</summary>
    public static void Register(TaskDeclaration declaration, bool replace = false)
    {
        declaration.Checked();
        Register(declaration.Name, o => new DeclaredTask(declaration, o), replace);
    }

    /// <summary>Builds the named task over a data folder (all evaluation examples).</summary>
    public static IEvalTask Create(string name, string dataDir) => Create(name, new TaskOptions(dataDir));

    /// <summary>Builds the named task with options (data folder, limit, sample seed).</summary>
    public static IEvalTask Create(string name, TaskOptions options)
    {
        Func<TaskOptions, IEvalTask>? factory;
        lock (Gate) Factories.TryGetValue(name, out factory);
        if (factory is null)
            throw new ArgumentException($"Unknown task \"{name}\". Known tasks: {string.Join(", ", KnownNames)}.", nameof(name));
        return factory(options);
    }
}
