namespace Superficial.Evaluation.Runner;

/// <summary>How <see cref="EvalRunner"/> runs, and what it records about the run in summary.json.</summary>
public sealed record EvalRunOptions
{
    /// <summary>Prompts per Generate / examples per LogLikelihood call; also the unit of writing and resuming.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>At most this many examples are scored at once (judges may be slow remote or local models).</summary>
    public int ScoringConcurrency { get; init; } = 4;
    /// <summary>Evaluate only the first N examples of each task's evaluation split (null: all).</summary>
    public int? Limit { get; init; }
    /// <summary>
    /// Side variants that need fewer examples than the main ones: each named variant is evaluated on at most this many
    /// examples of each task (the first ones). A comparison then rests on the examples all three of its variants were
    /// evaluated on. Empty: every variant sees every example.
    /// </summary>
    public IReadOnlyDictionary<string, int> VariantLimits { get; init; } = new Dictionary<string, int>();
    /// <summary>
    /// Another run's output folder: a (task, variant) this run has no predictions for yet starts from that run's records of
    /// the same task and variant, when its .variant.json shows the very same variant (models, head, settings), so a variant
    /// two evaluations share is generated once. Null: none.
    /// </summary>
    public string? ReuseFrom { get; init; }
    /// <summary>
    /// Generation tasks generate at most this many new tokens (null: each task's own budget, e.g. 512 for gsm), for
    /// quick runs on large models. A capped variant's predictions are kept apart from uncapped ones (its identity says the cap).
    /// </summary>
    public int? MaxNewTokens { get; init; }
    public int Seed { get; init; }
    public int BootstrapResamples { get; init; } = Stats.PairedBootstrap.DefaultResamples;
    /// <summary>The first is the main comparison (summary.json "tasks"); the others go under "comparisons".
    /// Alpha-sweep comparisons are added for variants named after a comparison's Mid (see <see cref="Comparison.AlphaSweep"/>).</summary>
    public IReadOnlyList<Comparison> Comparisons { get; init; } = [Comparison.Superficial];
    /// <summary>Judges and labellers the tasks may use when scoring.</summary>
    public ScoringContext Scoring { get; init; } = ScoringContext.None;
    /// <summary>Free-form notes per task name, shown next to its figures (e.g. "labeller held-out accuracy 0.91 (n=2560)").</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Notes { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    /// <summary>Recorded verbatim: the CLI's settings, where the data came from, which checkpoints each variant is.</summary>
    public IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> Settings { get; init; } = new Dictionary<string, System.Text.Json.Nodes.JsonNode?>();
    public IReadOnlyDictionary<string, string> DataSources { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Models { get; init; } = new Dictionary<string, string>();
}
