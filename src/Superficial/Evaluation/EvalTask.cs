using Superficial.Generation;

namespace Superficial.Evaluation;

/// <summary>How a task asks a model.</summary>
public enum TaskKind
{
    /// <summary>Free greedy generation, cut at the stop strings, then scored.</summary>
    Generation,
    /// <summary>Ranking fixed continuations (the choices) by their log-likelihood after the prompt.</summary>
    MultipleChoice,
    /// <summary>The log-likelihood of the example's own text (one continuation) after a fixed prompt, e.g. a per-character NLL.</summary>
    RollingLogLikelihood,
}

/// <summary>The score of one example. <see cref="Value"/> is what the task's metric averages.</summary>
public sealed record ExampleScore(double Value, IReadOnlyDictionary<string, object?>? Details = null);

/// <summary>
/// A benchmark, in the style of lm-evaluation-harness: data splits, prompt building, scoring of one
/// example. The task metric is always the mean of <see cref="ExampleScore.Value"/> over examples, so
/// confidence intervals can be bootstrapped over examples without knowing the task.
/// </summary>
public interface IEvalTask
{
    /// <summary>Short name used on the command line and in files ("gsm", "advbench", "organism-safety").</summary>
    string Name { get; }
    /// <summary>Name of the metric (e.g. "attack_success_rate", "accuracy", "toxic_rate", "mc1").</summary>
    string Metric { get; }
    bool HigherIsBetter { get; }
    TaskKind Kind { get; }
    /// <summary>Generation budget for this task's outputs.</summary>
    int MaxNewTokens { get; }
    /// <summary>Generation stops when any of these strings appears in the output (it is cut there).</summary>
    IReadOnlyList<string> StopStrings { get; }

    /// <summary>Prompts whose aligned-model generations are extracted to train the superficial head.</summary>
    IReadOnlyList<TaskExample> ExtractionSplit();
    /// <summary>Held-out examples the variants are evaluated on (disjoint from the extraction split).</summary>
    IReadOnlyList<TaskExample> EvaluationSplit();

    PromptSpec BuildPrompt(TaskExample example);

    /// <summary>Scores one generated output (Generation tasks). Judges come from the context.</summary>
    Task<ExampleScore> ScoreAsync(TaskExample example, string output, ScoringContext context, CancellationToken ct = default);

    /// <summary>
    /// Services (judges, labellers: types looked up in <see cref="ScoringContext"/>) the task cannot score without;
    /// a run checks them before it starts rather than failing at the first example.
    /// </summary>
    IReadOnlyList<Type> RequiredServices => [];

    /// <summary>Continuations whose log-likelihood is compared (MultipleChoice tasks, one per choice; RollingLogLikelihood, the one text).</summary>
    IReadOnlyList<string> Continuations(TaskExample example);
    /// <summary>Scores one example from the summed log-likelihood of each continuation (MultipleChoice and RollingLogLikelihood tasks).</summary>
    ExampleScore ScoreChoices(TaskExample example, IReadOnlyList<double> logLikelihoods);
}

/// <summary>
/// What scoring may use besides the output: optional judges and labellers. Tasks must work with none
/// configured (falling back to their rule-based metric) unless they say otherwise.
/// </summary>
public sealed class ScoringContext
{
    public static ScoringContext None { get; } = new();
    /// <summary>Extra services by type (judges, toxicity labellers); tasks look up what they can use.</summary>
    public IReadOnlyDictionary<Type, object> Services { get; init; } = new Dictionary<Type, object>();
    public T? Get<T>() where T : class => Services.TryGetValue(typeof(T), out var s) ? (T)s : null;

    /// <summary>Refuses, before anything runs, a task whose <see cref="IEvalTask.RequiredServices"/> this context lacks.</summary>
    public void CheckServices(IEvalTask task)
    {
        var missing = task.RequiredServices.Where(t => !Services.ContainsKey(t)).Select(ServiceName).ToArray();
        if (missing.Length > 0)
            throw new Tasks.ScorerMissingException($"task {task.Name} cannot be scored without a {string.Join(" and a ", missing)}; none is configured.");
    }

    static string ServiceName(Type t) =>
        t == typeof(Judges.ISafetyJudge) ? "safety judge (an LLM judge)"
        : t == typeof(Judges.ITruthJudge) ? "truthfulness judge (an LLM judge)"
        : t == typeof(Toxicity.IToxicityLabeler) ? "toxicity labeller" : t.Name;
}
