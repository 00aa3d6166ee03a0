using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Evaluation.Stats;

namespace Superficial.Evaluation.Runner;

/// <summary>One variant's metric on one task: the mean per-example score and its 95% bootstrap interval.</summary>
public sealed record VariantResult(string Variant, int N, double Mean, Interval Ci95);

/// <summary>The mean score of each variant on the examples of one group (e.g. a ToxiGen target group).</summary>
public sealed record GroupResult(string Group, int N, IReadOnlyDictionary<string, double> Means);

/// <summary>Everything measured on one task: every variant's metric, per-group means, and the run's notes.</summary>
public sealed record TaskResults(string Task, string Metric, bool HigherIsBetter, int N,
    IReadOnlyList<VariantResult> Variants, IReadOnlyList<GroupResult> Groups, IReadOnlyList<string> Notes)
{
    public VariantResult? Variant(string name) => Variants.FirstOrDefault(v => v.Variant == name);
}

/// <summary>A comparison's three variants and the portion on one task.</summary>
public sealed record ComparisonTaskResult(string Task, string Metric, bool HigherIsBetter, int N,
    VariantResult Low, VariantResult Mid, VariantResult High, PortionEstimate Portion);

/// <summary>A comparison over all tasks. <paramref name="Keys"/> name low/mid/high in summary.json
/// (base/head/aligned for the main comparison, the variant names otherwise).</summary>
public sealed record ComparisonResults(Comparison Comparison, (string Low, string Mid, string High) Keys,
    double? Alpha, string? SweepOf, IReadOnlyList<ComparisonTaskResult> Tasks);

/// <summary>Time spent in this run (not earlier interrupted ones) on one task and variant.</summary>
public sealed record TaskTiming(string Task, string Variant, int ExamplesRun, double GenerateSeconds, double ScoreSeconds)
{
    /// <summary>The "timings" object of summary.json and shard.json: the total and each (task, variant)'s seconds.</summary>
    public static JsonObject ToJson(double totalSeconds, IEnumerable<TaskTiming> timings) => new()
    {
        ["total_s"] = Math.Round(totalSeconds, 3),
        ["runs"] = new JsonArray(timings.Select(t => (JsonNode?)new JsonObject
        {
            ["task"] = t.Task, ["variant"] = t.Variant, ["examples_run"] = t.ExamplesRun,
            ["generate_s"] = Math.Round(t.GenerateSeconds, 3), ["score_s"] = Math.Round(t.ScoreSeconds, 3),
        }).ToArray()),
    };
}

/// <summary>
/// The results of an evaluation run, as written to summary.json: the main comparison under "tasks"
/// ({"metric", "higher_is_better", "n", one mean per variant keyed by its name (e.g. "base", "base+head",
/// "aligned"), "ci95", "portion", "portion_ci95", "portion_note"} per task), further and alpha-sweep comparisons under "comparisons" (same per-task shape,
/// keyed by variant names), every variant's metric and per-group means under "per_task", and the run's
/// settings, data sources, model identities, bootstrap settings and timings.
/// </summary>
public sealed class EvalSummary
{
    public ComparisonResults? Main { get; init; }
    public IReadOnlyList<ComparisonResults> Comparisons { get; init; } = [];
    public IReadOnlyList<TaskResults> Tasks { get; init; } = [];
    public int Seed { get; init; }
    public int BootstrapResamples { get; init; }
    /// <summary>How the runner ran: batch size, limit, tasks, variants, samples per task (JSON values, numbers as numbers).</summary>
    public IReadOnlyDictionary<string, JsonNode?> Runner { get; init; } = new Dictionary<string, JsonNode?>();
    /// <summary>The run's settings as the caller recorded them (e.g. version, commit, command line, date, device, dtype, seeds).</summary>
    public IReadOnlyDictionary<string, JsonNode?> Settings { get; init; } = new Dictionary<string, JsonNode?>();
    public IReadOnlyDictionary<string, string> DataSources { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Models { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<TaskTiming> Timings { get; init; } = [];
    /// <summary>A run merged from shards: the time of each (Timings and TotalSeconds are their sums); empty for a single run.</summary>
    public IReadOnlyList<ShardTiming> Shards { get; init; } = [];
    public double TotalSeconds { get; init; }

    public const string FileName = "summary.json";

    static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes summary.json under <paramref name="outputDir"/> via a temporary file, so a crash never leaves a half-written summary.</summary>
    public string Save(string outputDir)
    {
        Directory.CreateDirectory(outputDir);
        var path = Path.Combine(outputDir, FileName);
        IO.AtomicFile.WriteAllText(path, ToJson().ToJsonString(WriteOptions) + "\n");
        return path;
    }

    /// <summary>Reads a summary.json written by <see cref="Save"/>; errors name the file and the field.</summary>
    public static EvalSummary Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"No evaluation summary at {path}; run the evaluation first.", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new EvalRunException($"{path}: not valid JSON ({e.Message}).", e); }
        try { return FromJson(root as JsonObject ?? throw new FormatException("expected a JSON object at the top level")); }
        catch (FormatException e) { throw new EvalRunException($"{path}: {e.Message}", e); }
    }

    // ---- writing ----

    public JsonObject ToJson()
    {
        var root = new JsonObject
        {
            ["tasks"] = Main is null ? new JsonObject() : ComparisonTasksJson(Main),
            ["main_comparison"] = Main is null ? null : ComparisonHeaderJson(Main),
            ["comparisons"] = new JsonObject(Comparisons.Select(c =>
            {
                var o = ComparisonHeaderJson(c);
                if (c.Alpha is { } a) o["alpha"] = a;
                if (c.SweepOf is { } s) o["sweep_of"] = s;
                o["tasks"] = ComparisonTasksJson(c);
                return KeyValuePair.Create(c.Comparison.Name, (JsonNode?)o);
            })),
            ["per_task"] = new JsonObject(Tasks.Select(t => KeyValuePair.Create(t.Task, (JsonNode?)new JsonObject
            {
                ["metric"] = t.Metric,
                ["higher_is_better"] = t.HigherIsBetter,
                ["n"] = t.N,
                ["variants"] = new JsonObject(t.Variants.Select(v => KeyValuePair.Create(v.Variant, (JsonNode?)new JsonObject
                {
                    ["mean"] = Z(v.Mean), ["ci95"] = IntervalJson(v.Ci95), ["n"] = v.N,
                }))),
                ["groups"] = new JsonObject(t.Groups.Select(g => KeyValuePair.Create(g.Group, (JsonNode?)new JsonObject
                {
                    ["n"] = g.N,
                    ["means"] = new JsonObject(g.Means.Select(m => KeyValuePair.Create(m.Key, (JsonNode?)m.Value))),
                }))),
                ["notes"] = new JsonArray(t.Notes.Select(n => (JsonNode?)n).ToArray()),
            }))),
            ["bootstrap"] = new JsonObject
            {
                ["resamples"] = BootstrapResamples,
                ["seed"] = Seed,
                ["interval"] = "95% percentile interval (type-7 quantiles at 2.5% and 97.5%) of a paired bootstrap over examples; per-task seed from the run seed and the task name",
                ["portion_rule"] = "portion = (mid - low) / (high - low); null when |high - low| < 1e-9 or the paired 95% interval of high - low contains 0; its interval leaves out resamples where high - low is 0 or reversed",
            },
            ["runner"] = NodeMap(Runner),
            ["settings"] = NodeMap(Settings),
            ["data_sources"] = StringMap(DataSources),
            ["models"] = StringMap(Models),
            ["timings"] = TaskTiming.ToJson(TotalSeconds, Timings),
        };
        if (Shards.Count > 0)
            root["timings"]!["shards"] = new JsonArray(Shards.Select(s => (JsonNode?)new JsonObject
            {
                ["shard"] = s.Shard, ["total_s"] = Math.Round(s.Seconds, 3),
            }).ToArray());
        return root;
    }

    static JsonObject ComparisonHeaderJson(ComparisonResults c) => new()
    {
        ["name"] = c.Comparison.Name, ["low"] = c.Comparison.Low, ["mid"] = c.Comparison.Mid, ["high"] = c.Comparison.High,
    };

    static JsonObject ComparisonTasksJson(ComparisonResults c) => new(c.Tasks.Select(t => KeyValuePair.Create(t.Task, (JsonNode?)new JsonObject
    {
        ["metric"] = t.Metric,
        ["higher_is_better"] = t.HigherIsBetter,
        ["n"] = t.N,
        [c.Keys.Low] = Z(t.Low.Mean),
        [c.Keys.Mid] = Z(t.Mid.Mean),
        [c.Keys.High] = Z(t.High.Mean),
        ["ci95"] = new JsonObject
        {
            [c.Keys.Low] = IntervalJson(t.Low.Ci95), [c.Keys.Mid] = IntervalJson(t.Mid.Ci95), [c.Keys.High] = IntervalJson(t.High.Ci95),
        },
        ["portion"] = t.Portion.Value is double pv ? Z(pv) : null,
        ["portion_ci95"] = t.Portion.Ci95 is { } ci ? IntervalJson(ci) : null,
        ["portion_note"] = t.Portion.Note,
    })));

    static JsonArray IntervalJson(Interval i) => new(Z(i.Low), Z(i.High));
    // -0 (e.g. a difference of equal rates) is written as 0
    static double Z(double x) => x == 0 ? 0.0 : x;
    static JsonObject NodeMap(IReadOnlyDictionary<string, JsonNode?> map) =>
        new(map.Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone())));
    static JsonObject StringMap(IReadOnlyDictionary<string, string> map) =>
        new(map.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));

    /// <summary>The keys a comparison's variants get in summary.json: their variant names, as in "per_task".</summary>
    public static (string Low, string Mid, string High) KeysFor(Comparison c, bool isMain) => (c.Low, c.Mid, c.High);

    // Summaries written before the keys were the variant names called the main comparison's variants base/head/aligned.
    static readonly (string Low, string Mid, string High) LegacyMainKeys = ("base", "head", "aligned");

    // ---- reading ----

    static EvalSummary FromJson(JsonObject root)
    {
        var perTask = Obj(root, "per_task", "per_task");
        var tasks = perTask.Select(kv =>
        {
            var where = $"per_task.{kv.Key}";
            var t = AsObj(kv.Value, where);
            var variants = Obj(t, "variants", where).Select(v =>
            {
                var vo = AsObj(v.Value, $"{where}.variants.{v.Key}");
                return new VariantResult(v.Key, Int(vo, "n", $"{where}.variants.{v.Key}"), Num(vo, "mean", $"{where}.variants.{v.Key}"),
                    Ival(vo["ci95"], $"{where}.variants.{v.Key}.ci95"));
            }).ToArray();
            var groups = (t["groups"] as JsonObject ?? []).Select(g =>
            {
                var go = AsObj(g.Value, $"{where}.groups.{g.Key}");
                var means = Obj(go, "means", $"{where}.groups.{g.Key}")
                    .ToDictionary(m => m.Key, m => AsNum(m.Value, $"{where}.groups.{g.Key}.means.{m.Key}"));
                return new GroupResult(g.Key, Int(go, "n", $"{where}.groups.{g.Key}"), means);
            }).ToArray();
            var notes = (t["notes"] as JsonArray ?? []).Select((n, i) => n?.GetValue<string>()
                ?? throw new FormatException($"{where}.notes[{i}]: expected a string")).ToArray();
            return new TaskResults(kv.Key, Str(t, "metric", where), Bool(t, "higher_is_better", where), Int(t, "n", where), variants, groups, notes);
        }).ToArray();

        ComparisonResults? main = null;
        if (root["main_comparison"] is JsonObject mc)
        {
            var c = Header(mc, "main_comparison");
            var tasksObj = Obj(root, "tasks", "");
            var keys = tasksObj.Select(kv => kv.Value as JsonObject).FirstOrDefault() is { } first && first[c.Mid] is null && first["head"] is not null
                ? LegacyMainKeys : KeysFor(c, true);
            main = ReadComparison(c, keys, null, null, tasksObj, "tasks", tasks);
        }
        var comparisons = (root["comparisons"] as JsonObject ?? []).Select(kv =>
        {
            var where = $"comparisons.{kv.Key}";
            var o = AsObj(kv.Value, where);
            var c = Header(o, where);
            double? alpha = o["alpha"] is null ? null : Num(o, "alpha", where);
            var sweepOf = o["sweep_of"]?.GetValue<string>();
            return ReadComparison(c, KeysFor(c, false), alpha, sweepOf, Obj(o, "tasks", where), $"{where}.tasks", tasks);
        }).ToArray();

        var timings = root["timings"] as JsonObject;
        var runs = (timings?["runs"] as JsonArray ?? []).Select((n, i) =>
        {
            var o = AsObj(n, $"timings.runs[{i}]");
            return new TaskTiming(Str(o, "task", $"timings.runs[{i}]"), Str(o, "variant", $"timings.runs[{i}]"),
                Int(o, "examples_run", $"timings.runs[{i}]"), Num(o, "generate_s", $"timings.runs[{i}]"), Num(o, "score_s", $"timings.runs[{i}]"));
        }).ToArray();
        var shards = (timings?["shards"] as JsonArray ?? []).Select((n, i) =>
        {
            var o = AsObj(n, $"timings.shards[{i}]");
            return new ShardTiming(Str(o, "shard", $"timings.shards[{i}]"), Num(o, "total_s", $"timings.shards[{i}]"));
        }).ToArray();
        var boot = root["bootstrap"] as JsonObject;
        return new EvalSummary
        {
            Main = main,
            Comparisons = comparisons,
            Tasks = tasks,
            Seed = boot is null ? 0 : Int(boot, "seed", "bootstrap"),
            BootstrapResamples = boot is null ? 0 : Int(boot, "resamples", "bootstrap"),
            Runner = ReadNodes(root, "runner"),
            Settings = ReadNodes(root, "settings"),
            DataSources = ReadMap(root, "data_sources"),
            Models = ReadMap(root, "models"),
            Timings = runs,
            Shards = shards,
            TotalSeconds = timings?["total_s"] is null ? 0 : Num(timings, "total_s", "timings"),
        };
    }

    static Comparison Header(JsonObject o, string where) =>
        new(Str(o, "name", where), Str(o, "low", where), Str(o, "mid", where), Str(o, "high", where));

    static ComparisonResults ReadComparison(Comparison c, (string Low, string Mid, string High) keys, double? alpha, string? sweepOf,
        JsonObject tasksObj, string where, IReadOnlyList<TaskResults> perTask)
    {
        var rows = tasksObj.Select(kv =>
        {
            var w = $"{where}.{kv.Key}";
            var t = AsObj(kv.Value, w);
            var n = Int(t, "n", w);
            var ci = Obj(t, "ci95", w);
            VariantResult V(string key, string variant) =>
                new(variant, n, Num(t, key, w), Ival(ci[key], $"{w}.ci95.{key}"));
            double? value = t["portion"] is null ? null : Num(t, "portion", w);
            var note = Str(t, "portion_note", w);
            PortionUndefined? why;
            try { why = SuperficialPortion.ReasonOf(value, note); }
            catch (FormatException e) { throw new FormatException($"{w}: {e.Message}"); }
            var portion = new PortionEstimate(value, t["portion_ci95"] is null ? null : Ival(t["portion_ci95"], $"{w}.portion_ci95"), note)
                { Undefined = why };
            return new ComparisonTaskResult(kv.Key, Str(t, "metric", w), Bool(t, "higher_is_better", w), n,
                V(keys.Low, c.Low), V(keys.Mid, c.Mid), V(keys.High, c.High), portion);
        }).ToArray();
        return new ComparisonResults(c, keys, alpha, sweepOf, rows);
    }

    static IReadOnlyDictionary<string, string> ReadMap(JsonObject root, string key) =>
        (root[key] as JsonObject ?? []).ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "");
    static IReadOnlyDictionary<string, JsonNode?> ReadNodes(JsonObject root, string key) =>
        (root[key] as JsonObject ?? []).ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone());

    static JsonObject Obj(JsonObject o, string key, string where) => AsObj(o[key], where.Length == 0 ? key : $"{where}.{key}");
    static JsonObject AsObj(JsonNode? n, string where) => n as JsonObject ?? throw new FormatException($"{where}: expected a JSON object");
    static string Str(JsonObject o, string key, string where) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new FormatException($"{where}.{key}: expected a string");
    static bool Bool(JsonObject o, string key, string where) =>
        o[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : throw new FormatException($"{where}.{key}: expected true or false");
    static int Int(JsonObject o, string key, string where) =>
        o[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw new FormatException($"{where}.{key}: expected an integer");
    static double Num(JsonObject o, string key, string where) => AsNum(o[key], $"{where}.{key}");
    static double AsNum(JsonNode? n, string where) =>
        n is JsonValue v && v.TryGetValue<double>(out var d) ? d : throw new FormatException($"{where}: expected a number");
    static Interval Ival(JsonNode? n, string where) =>
        n is JsonArray { Count: 2 } a ? new Interval(AsNum(a[0], where), AsNum(a[1], where))
            : throw new FormatException($"{where}: expected [low, high]");
}
