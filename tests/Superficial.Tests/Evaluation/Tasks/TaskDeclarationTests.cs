using Superficial.Evaluation;
using Superficial.Evaluation.Judges;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Tasks;
using Superficial.Evaluation.Toxicity;
using Superficial.Generation;
using Superficial.Tests.Evaluation.Runner;

namespace Superficial.Tests.Evaluation.Tasks;

/// <summary>Tasks as declarations: a declaration that does not fit its kind is refused, and a scorer's services are checked before a run starts.</summary>
public sealed class TaskDeclarationTests : IDisposable
{
    readonly TaskFixture _data = new();
    public void Dispose() => _data.Dispose();

    static TaskDeclaration Echo => new()
    {
        Name = "echo", Metric = "match", HigherIsBetter = true, MaxNewTokens = 4, StopStrings = ["\n"],
        Prompt = e => new PromptSpec(e.Input, e.Input),
        ExtractionSplit = _ => [],
        EvaluationSplit = _ => [new TaskExample("a", "x", "x"), new TaskExample("b", "y", "z")],
        Score = (e, output, _, _) => Task.FromResult(new ExampleScore(output == e.Target ? 1 : 0)),
    };

    [Fact]
    public void A_declaration_that_does_not_fit_its_kind_is_refused_naming_the_task()
    {
        var echo = Echo;
        Assert.Same(echo, echo.Checked());
        Assert.Contains("declaration echo: a generation task needs Score", Assert.Throws<ArgumentException>(() => (Echo with { Score = null }).Checked()).Message);
        Assert.Contains("MaxNewTokens", Assert.Throws<ArgumentException>(() => (Echo with { MaxNewTokens = 0 }).Checked()).Message);
        Assert.Contains("needs Continuations and ScoreChoices",
            Assert.Throws<ArgumentException>(() => (Echo with { Kind = TaskKind.MultipleChoice, Score = null }).Checked()).Message);
        Assert.Contains("not Score", Assert.Throws<ArgumentException>(() => (Echo with
            { Kind = TaskKind.RollingLogLikelihood, Continuations = e => [e.Input], ScoreChoices = (_, ll) => new(ll[0]) }).Checked()).Message);
        Assert.Throws<ArgumentException>(() => new DeclaredTask(Echo with { Metric = "" }, new TaskOptions(".")));
    }

    [Fact]
    public async Task A_declared_task_runs_through_the_runner_like_any_task()
    {
        using var tmp = TestPaths.NewTempDir("declared");
        var task = new DeclaredTask(Echo, new TaskOptions(tmp.Path));
        var variants = new IModelVariant[]
        {
            new FakeVariant("base", false, p => "q"), new FakeVariant("base+head", false, p => p.Raw == "x" ? "x" : "q"), new FakeVariant("aligned", true, p => p.Raw == "x" ? "x" : "z"),
        };
        var summary = await new EvalRunner(tmp.Path).RunAsync([task], variants);
        var row = summary.Main!.Tasks.Single();
        Assert.Equal([0.0, 0.5, 1.0], new[] { row.Low.Mean, row.Mid.Mean, row.High.Mean });
    }

    [Fact]
    public async Task A_run_without_a_service_its_scorer_needs_is_refused_before_any_generation()
    {
        var toxigen = ToxiGenTask.Create(new TaskOptions(_data.DataDir) { Limit = 2 });
        Assert.Equal([typeof(IToxicityLabeler)], toxigen.RequiredServices);
        Assert.Equal([typeof(ITruthJudge)], TruthfulQaGenTask.Create(new TaskOptions(_data.DataDir)).RequiredServices);
        Assert.Empty(GsmTask.Create(new TaskOptions(_data.DataDir)).RequiredServices);
        Assert.Empty(AdvBenchTask.Create(new TaskOptions(_data.DataDir)).RequiredServices); // the judge is optional: refusal matching otherwise
        using var tmp = TestPaths.NewTempDir("services");
        var variant = new FakeVariant("base", false, p => "text");
        var e = await Assert.ThrowsAsync<ScorerMissingException>(() => new EvalRunner(tmp.Path,
            new EvalRunOptions { Comparisons = [] }).RunAsync([toxigen], [variant]));
        Assert.Contains("toxigen", e.Message);
        Assert.Contains("toxicity labeller", e.Message);
        Assert.Empty(variant.Generated);
        Assert.Empty(Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Eval_refuses_a_judged_task_without_a_judge_before_anything_loads_naming_the_flag()
    {
        using var tmp = TestPaths.NewTempDir("nojudge");
        var outDir = Path.Combine(tmp.Path, "out");
        // The model folders do not exist: the refusal must come before any model is looked at.
        var r = Superficial.Tests.Cli.CliProcess.Run(["eval", "--base", tmp.File("b"), "--aligned", tmp.File("a"), "--head", tmp.File("h"),
            "--tasks", "truthfulqa", "--data", _data.DataDir, "--out", outDir],
            env: new Dictionary<string, string> { ["XDG_CACHE_HOME"] = tmp.File("cache") });
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("task truthfulqa cannot be scored without a truthfulness judge", r.Stderr);
        Assert.Contains("--judge-model", r.Stderr);
        Assert.False(File.Exists(Path.Combine(outDir, "summary.json")));
        Assert.False(Directory.Exists(Path.Combine(outDir, "predictions")));
    }
}
