using System.Globalization;
using Superficial.Alignment;
using Superficial.Evaluation.Report;
using Superficial.Evaluation.Runner;
using Superficial.IO;
using static TorchSharp.torch;

namespace Superficial.Evaluation;

/// <summary>
/// What an evaluation compares, as plain values (model folders, head files, sweeps). <see cref="Experiment"/>
/// turns it into named variants and the comparisons between them; the CLI only fills it from its flags.
/// </summary>
public sealed record ExperimentOptions
{
    public string? Base { get; init; }
    public string? Aligned { get; init; }
    public string? Head { get; init; }
    /// <summary>Further heads for the same base (other seeds or ranks): variants base+head#2, #3, ... and comparisons superficial#2, ...</summary>
    public IReadOnlyList<string> ExtraHeads { get; init; } = [];
    /// <summary>When set, Base/Aligned are the large pair and Head belongs to this small base model (offsite alignment).</summary>
    public string? TransferFrom { get; init; }
    public TransferMode TransferMode { get; init; } = TransferMode.Offset;
    /// <summary>A second, larger pair evaluated with Head transferred from Base (in the same run as the main comparison).</summary>
    public string? LargeBase { get; init; }
    public string? LargeAligned { get; init; }
    public string? Compromised { get; init; }
    public string? RecoverWith { get; init; }
    public string? ViaBase { get; init; }
    /// <summary>What the ViaBase model reads: the raw prompt (variant compromised+head-via-base) and/or the same tokens (compromised+head-via-base-same).</summary>
    public IReadOnlyList<SideModelReads> ViaBaseReads { get; init; } = [SideModelReads.Raw];
    /// <summary>
    /// Further compromised models (e.g. other strengths of the attack), each recovered like <see cref="Compromised"/>
    /// at scale 1: variants Name, Name+head and, with <see cref="ViaBase"/>, Name+head-via-base[-same]. Needs Compromised.
    /// </summary>
    public IReadOnlyList<(string Name, string Model)> MoreCompromised { get; init; } = [];
    /// <summary>Scales of the head's shift; each alpha other than 1 adds variants named with <see cref="Comparison.AlphaTag"/>.</summary>
    public IReadOnlyList<double> Alphas { get; init; } = [1.0];
    public string? ChatTemplate { get; init; }
    /// <summary>Apply heads even to models other than the base they were trained on.</summary>
    public bool AllowOtherBase { get; init; }
    /// <summary>
    /// Bytes the models may take at once (null: no limit). Variants run one after another; within the budget a model no
    /// running variant holds is freed before the next is loaded, and a variant that cannot fit is refused before anything loads.
    /// </summary>
    public long? MaxMemory { get; init; }
}

/// <summary>
/// An evaluation experiment (in the manner of lm-evaluation-harness's simple_evaluate): which variants run
/// (base, base+head, aligned, transfer, recovery, alpha sweeps, extra heads), their names, and the comparisons
/// whose portions are reported. Built from <see cref="ExperimentOptions"/>; <see cref="Run"/> evaluates it.
/// </summary>
public sealed class Experiment
{
    public ExperimentOptions Options { get; }
    /// <summary>The variants in evaluation order; names are those of summary.json and the prediction files.</summary>
    public IReadOnlyList<VariantSpec> Variants { get; }
    /// <summary>The first is the main comparison; alpha-sweep comparisons are derived from variant names by the runner.</summary>
    public IReadOnlyList<Comparison> Comparisons { get; }

    public Experiment(ExperimentOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        (Variants, Comparisons) = Plan(options);
    }

    /// <summary>The variant name of the recovery via the original base, by what that base reads.</summary>
    public static string ViaBaseVariant(SideModelReads reads) => reads switch
    {
        SideModelReads.Raw => "compromised+head-via-base",
        SideModelReads.Same => "compromised+head-via-base-same",
        _ => throw new ParameterException(nameof(ExperimentOptions.ViaBaseReads), $"`ViaBaseReads` {reads}: expected raw and/or same."),
    };

    /// <summary>A variant's name at head scale <paramref name="alpha"/>: the name itself at 1, else name@a=alpha.</summary>
    public static string AlphaVariant(string name, double alpha) =>
        alpha == 1.0 ? name : $"{name}{Comparison.AlphaTag}{alpha.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The variant name under which the i-th (0-based) of several heads is evaluated: base+head, base+head#2, ...</summary>
    public static string HeadVariant(int index) => index == 0 ? "base+head" : $"base+head#{index + 1}";

    static (IReadOnlyList<VariantSpec>, IReadOnlyList<Comparison>) Plan(ExperimentOptions o)
    {
        var variants = new List<VariantSpec>();
        var comparisons = new List<Comparison>();
        var none = new SteeringRequest();
        void Headed(string name, string model, SteeringRequest steering)
        {
            foreach (var a in o.Alphas.Distinct())
                variants.Add(new VariantSpec(AlphaVariant(name, a), model, false, steering with { Alpha = a }, o.ChatTemplate));
        }
        if (o.TransferFrom is not null)
        {
            if (o.ExtraHeads.Count > 0)
                throw new ParameterException(nameof(o.ExtraHeads), "several `ExtraHeads` are evaluated against `Base` only, not with `TransferFrom`.");
            Require(o.Base, nameof(o.Base), "the large base model"); Require(o.Aligned, nameof(o.Aligned), "the large aligned model");
            Require(o.Head, nameof(o.Head), "trained on `TransferFrom`");
            variants.Add(new VariantSpec("large-base", o.Base!, false, none));
            Headed("large-base+head", o.Base!, new SteeringRequest { Head = o.Head, TransferFrom = o.TransferFrom, TransferMode = o.TransferMode });
            variants.Add(new VariantSpec("large-aligned", o.Aligned!, true, none, o.ChatTemplate));
            comparisons.Add(Comparison.Transfer);
        }
        else if (o.Base is not null || o.Head is not null)
        {
            Require(o.Base, nameof(o.Base)); Require(o.Aligned, nameof(o.Aligned)); Require(o.Head, nameof(o.Head));
            variants.Add(new VariantSpec("base", o.Base!, false, none));
            Headed("base+head", o.Base!, new SteeringRequest { Head = o.Head });
            variants.Add(new VariantSpec("aligned", o.Aligned!, true, none, o.ChatTemplate));
            comparisons.Add(Comparison.Superficial);
            for (int i = 0; i < o.ExtraHeads.Count; i++)
            {
                var name = HeadVariant(i + 1);
                variants.Add(new VariantSpec(name, o.Base!, false, new SteeringRequest { Head = o.ExtraHeads[i] }));
                comparisons.Add(new Comparison($"superficial#{i + 2}", "base", name, "aligned"));
            }
            if (o.LargeBase is not null)
            {
                Require(o.LargeAligned, nameof(o.LargeAligned));
                variants.Add(new VariantSpec("large-base", o.LargeBase, false, none));
                Headed("large-base+head", o.LargeBase, new SteeringRequest { Head = o.Head, TransferFrom = o.Base, TransferMode = o.TransferMode });
                variants.Add(new VariantSpec("large-aligned", o.LargeAligned!, true, none, o.ChatTemplate));
                comparisons.Add(Comparison.Transfer);
            }
        }
        if (o.Compromised is not null)
        {
            Require(o.RecoverWith, nameof(o.RecoverWith)); Require(o.Aligned, nameof(o.Aligned), "the model before it was compromised");
            var reads = o.ViaBaseReads.Distinct().ToArray();
            if (!variants.Any(v => v.Name == "aligned")) variants.Add(new VariantSpec("aligned", o.Aligned!, true, none, o.ChatTemplate));
            variants.Add(new VariantSpec("compromised", o.Compromised, true, none, o.ChatTemplate));
            foreach (var a in o.Alphas.Distinct())
            {
                variants.Add(new VariantSpec(AlphaVariant("compromised+head", a), o.Compromised, true,
                    new SteeringRequest { RecoverWith = o.RecoverWith, Alpha = a }, o.ChatTemplate));
                if (o.ViaBase is not null)
                    foreach (var r in reads)
                        variants.Add(new VariantSpec(AlphaVariant(ViaBaseVariant(r), a), o.Compromised, true,
                            new SteeringRequest { RecoverWith = o.RecoverWith, ViaBase = o.ViaBase, ViaBaseReads = r, Alpha = a }, o.ChatTemplate));
            }
            comparisons.Add(Comparison.Recovery);
            if (o.ViaBase is not null)
                foreach (var r in reads)
                    comparisons.Add(new Comparison(ViaBaseVariant(r).Replace("compromised+head", "recovery"), "compromised", ViaBaseVariant(r), "aligned"));
            foreach (var (name, model) in o.MoreCompromised)
            {
                if (variants.Any(v => v.Name == name || v.Name.StartsWith(name + "+", StringComparison.Ordinal)))
                    throw new ParameterException(nameof(o.MoreCompromised), $"`MoreCompromised` names \"{name}\" twice or as another variant.");
                variants.Add(new VariantSpec(name, model, true, none, o.ChatTemplate));
                variants.Add(new VariantSpec(name + "+head", model, true, new SteeringRequest { RecoverWith = o.RecoverWith }, o.ChatTemplate));
                if (o.ViaBase is not null)
                    foreach (var r in reads)
                        variants.Add(new VariantSpec(name + ViaBaseVariant(r)["compromised".Length..], model, true,
                            new SteeringRequest { RecoverWith = o.RecoverWith, ViaBase = o.ViaBase, ViaBaseReads = r }, o.ChatTemplate));
            }
        }
        else if (o.MoreCompromised.Count > 0)
            throw new ParameterException(nameof(o.MoreCompromised), "`MoreCompromised` needs `Compromised` (and `RecoverWith`).");
        if (variants.Count == 0)
            throw new ParameterException(nameof(o.Base), "nothing to evaluate: give `Base`, `Aligned` and `Head` (and optionally `Compromised` ...).");
        return (variants.Select(v => v with { Steering = v.Steering with { AllowOtherBase = o.AllowOtherBase } }).ToList(), comparisons);
    }

    static void Require(string? value, string parameter, string? what = null)
    {
        if (value is null) throw new ParameterException(parameter, what is null ? $"missing `{parameter}`." : $"missing `{parameter}` ({what}).");
    }

    /// <summary>What each variant is, in words (summary.json "models"): model folder and prompt form, head, transfer and recovery settings.</summary>
    public IReadOnlyDictionary<string, string> ModelDescriptions() => Variants.ToDictionary(s => s.Name, s =>
        $"{Path.GetFullPath(s.Model)} ({(s.Chat ? "chat" : "raw")})" + (s.Steering.IsEmpty ? "" :
            $"; head {s.Steering.Head ?? s.Steering.RecoverWith}" + (s.Steering.TransferFrom is { } tf ? $" via small base {tf} ({s.Steering.TransferMode.Name()})" : "") +
            (s.Steering.ViaBase is { } vb ? $" via base {vb}" : "") + (s.Steering.Alpha != 1 ? $", alpha {s.Steering.Alpha}" : "")));

    /// <summary>
    /// Evaluates every variant on every task under <paramref name="outDir"/> (resumable) and writes summary.json,
    /// report.md and report.html. Heads are checked against their models from the files' headers before any model
    /// loads; models are loaded once each and freed when their last variant is done. <paramref name="run"/> gives
    /// the runner's settings; its comparisons and model descriptions are this experiment's.
    /// </summary>
    public EvalSummary Run(IReadOnlyList<IEvalTask> tasks, string outDir, EvalRunOptions run, ScalarType? dtype = null,
        IProgress<EvalProgress>? progress = null, CancellationToken ct = default)
    {
        var summary = Evaluate(outDir, run, dtype, (runner, variants) => runner.RunAsync(tasks, variants, progress, ct));
        EvalReport.Write(outDir);
        return summary;
    }

    /// <summary>
    /// Runs one worker's slice of the experiment (every N-th batch of each task, see <see cref="EvalRunner.RunShardAsync"/>)
    /// under OUT/shards/K-of-N/, resumably; once all N have, <see cref="EvalShards.Merge"/> writes what <see cref="Run"/> writes.
    /// </summary>
    public EvalShard RunShard(ShardSpec shard, IReadOnlyList<IEvalTask> tasks, string outDir, EvalRunOptions run, ScalarType? dtype = null,
        IProgress<EvalProgress>? progress = null, CancellationToken ct = default) =>
        Evaluate(outDir, run, dtype, (runner, variants) => runner.RunShardAsync(shard, tasks, variants, progress, ct));

    T Evaluate<T>(string outDir, EvalRunOptions run, ScalarType? dtype, Func<EvalRunner, IReadOnlyList<IModelVariant>, Task<T>> evaluate)
    {
        foreach (var spec in Variants) SteeringPreflight.Check(spec.Model, spec.Steering);
        using var pool = new ModelPool(Variants, dtype, Options.MaxMemory);
        var variants = Variants.Select(s => new LazyModelVariant(s, pool, run.BatchSize)).ToList();
        var runner = new EvalRunner(outDir, run with { Comparisons = Comparisons, Models = ModelDescriptions() });
        return evaluate(runner, variants).GetAwaiter().GetResult();
    }
}
