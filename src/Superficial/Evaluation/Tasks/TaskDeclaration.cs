using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>
/// A task as one declaration, in the spirit of lm-evaluation-harness's task files: its name, metric and
/// direction, how it asks a model (kind, token budget, stop strings), how a base model and a chat model read
/// an example, where its examples come from, its scorer and the services the scorer needs. Adding a benchmark
/// is adding one of these (and registering it with <see cref="TaskRegistry.Register(TaskDeclaration, bool)"/>);
/// the runner does not change.
/// </summary>
public sealed record TaskDeclaration
{
    /// <summary>Short name used on the command line and in files.</summary>
    public required string Name { get; init; }
    /// <summary>What the mean of the example scores is called (e.g. "accuracy", "attack_success_rate").</summary>
    public required string Metric { get; init; }
    public required bool HigherIsBetter { get; init; }
    public TaskKind Kind { get; init; } = TaskKind.Generation;
    /// <summary>Generation budget (Generation tasks).</summary>
    public int MaxNewTokens { get; init; }
    /// <summary>Generation is cut at the first of these (Generation tasks).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>How an example is asked: <see cref="PromptSpec.Raw"/> is what a base model reads, the user turn and response prefix what a chat model reads.</summary>
    public required Func<TaskExample, PromptSpec> Prompt { get; init; }
    /// <summary>The examples the head is extracted from (may be empty), read from the task's data folder.</summary>
    public required Func<TaskOptions, IReadOnlyList<TaskExample>> ExtractionSplit { get; init; }
    /// <summary>The held-out examples the variants are evaluated on (before any limit), read from the task's data folder.</summary>
    public required Func<TaskOptions, IReadOnlyList<TaskExample>> EvaluationSplit { get; init; }
    /// <summary>Scores one generated output (Generation tasks).</summary>
    public Func<TaskExample, string, ScoringContext, CancellationToken, Task<ExampleScore>>? Score { get; init; }
    /// <summary>The continuations whose log-likelihoods are compared (MultipleChoice: one per choice; RollingLogLikelihood: the one text).</summary>
    public Func<TaskExample, IReadOnlyList<string>>? Continuations { get; init; }
    /// <summary>Scores one example from its continuations' summed log-likelihoods (MultipleChoice, RollingLogLikelihood).</summary>
    public Func<TaskExample, IReadOnlyList<double>, ExampleScore>? ScoreChoices { get; init; }
    /// <summary>Checks the data folder when the task is built (e.g. <see cref="BenchmarkData.CheckFolder"/>), before any example is read.</summary>
    public Action<TaskOptions>? CheckData { get; init; }
    /// <summary>What the task reads, as `superficial tasks` lists it: its data and any judge or labeller, each option
    /// named as a `parameter` in backquotes (the command line shows its flag).</summary>
    public string Reads { get; init; } = "";
    /// <summary>Services the scorer cannot work without (e.g. a toxicity labeller), checked when a run starts.</summary>
    public IReadOnlyList<Type> RequiredServices { get; init; } = [];

    /// <summary>Refuses a declaration whose parts do not fit its kind (a generation task with no scorer, ...).</summary>
    public TaskDeclaration Checked()
    {
        string? problem = null;
        if (string.IsNullOrWhiteSpace(Name)) problem = "it has no name";
        else if (string.IsNullOrWhiteSpace(Metric)) problem = "it has no metric";
        else if (Kind == TaskKind.Generation && Score is null) problem = "a generation task needs Score";
        else if (Kind == TaskKind.Generation && MaxNewTokens < 1) problem = $"a generation task needs MaxNewTokens of at least 1 (got {MaxNewTokens})";
        else if (Kind != TaskKind.Generation && (Continuations is null || ScoreChoices is null)) problem = $"a {Kind} task needs Continuations and ScoreChoices";
        else if (Kind != TaskKind.Generation && Score is not null) problem = $"a {Kind} task is scored by ScoreChoices, not Score";
        else if (Kind == TaskKind.Generation && (Continuations is not null || ScoreChoices is not null)) problem = "a generation task is scored by Score, not ScoreChoices";
        return problem is null ? this : throw new ArgumentException($"task declaration {Name}: {problem}.");
    }
}

/// <summary>A <see cref="TaskDeclaration"/> over one data folder: the splits load on first use.</summary>
public sealed class DeclaredTask : IEvalTask
{
    readonly Lazy<IReadOnlyList<TaskExample>> extraction;
    readonly Lazy<IReadOnlyList<TaskExample>> evaluation;

    public DeclaredTask(TaskDeclaration declaration, TaskOptions options)
    {
        Declaration = declaration.Checked();
        Options = options ?? throw new ArgumentNullException(nameof(options));
        declaration.CheckData?.Invoke(options);
        extraction = new(() => declaration.ExtractionSplit(options));
        evaluation = new(() => options.Apply(declaration.EvaluationSplit(options)));
    }

    public TaskDeclaration Declaration { get; }
    public TaskOptions Options { get; }
    public string Name => Declaration.Name;
    public string Metric => Declaration.Metric;
    public bool HigherIsBetter => Declaration.HigherIsBetter;
    public TaskKind Kind => Declaration.Kind;
    public int MaxNewTokens => Declaration.MaxNewTokens;
    public IReadOnlyList<string> StopStrings => Declaration.StopStrings;
    public IReadOnlyList<Type> RequiredServices => Declaration.RequiredServices;
    public IReadOnlyList<TaskExample> ExtractionSplit() => extraction.Value;
    public IReadOnlyList<TaskExample> EvaluationSplit() => evaluation.Value;
    public PromptSpec BuildPrompt(TaskExample example) => Declaration.Prompt(example);

    public Task<ExampleScore> ScoreAsync(TaskExample example, string output, ScoringContext context, CancellationToken ct = default) =>
        Declaration.Score is { } score ? score(example, output, context, ct)
            : throw new InvalidOperationException($"{Name} is not scored from generated text: it is a {Kind} task (ScoreChoices).");

    public IReadOnlyList<string> Continuations(TaskExample example) =>
        Declaration.Continuations is { } c ? c(example) : throw new InvalidOperationException($"{Name} is a generation task: it has no continuations.");

    public ExampleScore ScoreChoices(TaskExample example, IReadOnlyList<double> logLikelihoods) =>
        Declaration.ScoreChoices is { } s ? s(example, logLikelihoods) : throw new InvalidOperationException($"{Name} is a generation task: score its outputs with ScoreAsync.");
}
