using Superficial.Generation;

namespace Superficial.Evaluation.Tasks;

/// <summary>
/// Common plumbing of the benchmark tasks: lazily loaded splits, the evaluation limit, and clear errors
/// when a generation task is asked for likelihood scoring or the reverse.
/// </summary>
public abstract class EvalTaskBase : IEvalTask
{
    readonly Lazy<IReadOnlyList<TaskExample>> _extraction;
    readonly Lazy<IReadOnlyList<TaskExample>> _evaluation;

    protected EvalTaskBase(TaskOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        if (!Directory.Exists(options.DataDir))
            throw new TaskDataException($"Data folder not found: {options.DataDir}. It should hold advbench/, gsm/, toxigen/ and truthfulqa/.");
        _extraction = new(LoadExtraction);
        _evaluation = new(() => Options.Apply(LoadEvaluation()));
    }

    public TaskOptions Options { get; }
    public abstract string Name { get; }
    public abstract string Metric { get; }
    public abstract bool HigherIsBetter { get; }
    public virtual TaskKind Kind => TaskKind.Generation;
    public abstract int MaxNewTokens { get; }
    public virtual IReadOnlyList<string> StopStrings => [];
    public virtual IReadOnlyList<Type> RequiredServices => [];

    public IReadOnlyList<TaskExample> ExtractionSplit() => _extraction.Value;
    public IReadOnlyList<TaskExample> EvaluationSplit() => _evaluation.Value;

    protected abstract IReadOnlyList<TaskExample> LoadExtraction();
    protected abstract IReadOnlyList<TaskExample> LoadEvaluation();

    public abstract PromptSpec BuildPrompt(TaskExample example);

    public virtual Task<ExampleScore> ScoreAsync(TaskExample example, string output, ScoringContext context, CancellationToken ct = default) =>
        throw new InvalidOperationException($"{Name} is a multiple-choice task: it is scored from log-likelihoods (ScoreChoices), not from generated text.");

    public virtual IReadOnlyList<string> Continuations(TaskExample example) =>
        throw new InvalidOperationException($"{Name} is a generation task: it has no continuations to rank; score its outputs with ScoreAsync.");

    public virtual ExampleScore ScoreChoices(TaskExample example, IReadOnlyList<double> logLikelihoods) =>
        throw new InvalidOperationException($"{Name} is a generation task: it has no choices to score; score its outputs with ScoreAsync.");

    /// <summary>Path of a file under the data folder, with a clear error if it is missing.</summary>
    protected string DataFile(params string[] parts)
    {
        var path = Path.Combine([Options.DataDir, .. parts]);
        if (!File.Exists(path))
            throw new TaskDataException($"{Name}: data file not found: {path}. --data should point at the folder holding {parts[0]}/.");
        return path;
    }
}
