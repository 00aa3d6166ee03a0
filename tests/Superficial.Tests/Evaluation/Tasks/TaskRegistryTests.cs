using Superficial.Evaluation;
using Superficial.Evaluation.Tasks;
using Superficial.Generation;

namespace Superficial.Tests.Evaluation.Tasks;

public sealed class TaskRegistryTests : IDisposable
{
    readonly TaskFixture _data = new();
    public void Dispose() => _data.Dispose();

    [Fact]
    public void BuildsEveryBenchmarkByName()
    {
        foreach (var name in new[] { "advbench", "toxigen", "gsm", "truthfulqa", "truthfulqa-mc1", "truthfulqa-mc2" })
        {
            Assert.Contains(name, TaskRegistry.KnownNames);
            var task = TaskRegistry.Create(name, _data.DataDir);
            Assert.Equal(name, task.Name);
            Assert.NotEmpty(task.EvaluationSplit());
            Assert.NotEmpty(task.ExtractionSplit());
            // Evaluation examples never appear in the extraction split.
            Assert.Empty(task.EvaluationSplit().Select(e => e.Id).Intersect(task.ExtractionSplit().Select(e => e.Id)));
        }
    }

    [Fact]
    public void UnknownNameListsTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => TaskRegistry.Create("gsm9k", _data.DataDir));
        Assert.Contains("gsm9k", e.Message);
        Assert.Contains("advbench", e.Message);
    }

    [Fact]
    public void OtherTasksRegisterTheSameWay()
    {
        var name = "test-custom-" + Guid.NewGuid().ToString("N")[..8];
        TaskRegistry.Register(name, o => GsmTask.Create(o with { Limit = 1 }));
        Assert.Contains(name, TaskRegistry.KnownNames);
        Assert.Single(TaskRegistry.Create(name, _data.DataDir).EvaluationSplit());
        Assert.Throws<InvalidOperationException>(() => TaskRegistry.Register(name, o => GsmTask.Create(o)));
        TaskRegistry.Register(name, o => GsmTask.Create(o), replace: true);
        Assert.Equal(3, TaskRegistry.Create(name, _data.DataDir).EvaluationSplit().Count);
    }

    [Fact]
    public void MissingDataFolderIsAClearError()
    {
        var e = Assert.Throws<TaskDataException>(() => TaskRegistry.Create("gsm", Path.Combine(_data.DataDir, "nope")));
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void LimitTakesTheFirstNOrASeededSampleInDataOrder()
    {
        var all = Enumerable.Range(0, 50).Select(i => new TaskExample($"e{i}", $"x{i}")).ToArray();
        var opts = new TaskOptions(_data.DataDir);
        Assert.Same(all, opts.Apply(all));
        Assert.Equal(["e0", "e1", "e2"], (opts with { Limit = 3 }).Apply(all).Select(e => e.Id));
        Assert.Equal(50, (opts with { Limit = 500 }).Apply(all).Count);

        var a = (opts with { Limit = 10, SampleSeed = 7 }).Apply(all);
        var b = (opts with { Limit = 10, SampleSeed = 7 }).Apply(all);
        var c = (opts with { Limit = 10, SampleSeed = 8 }).Apply(all);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Select(e => e.Id), c.Select(e => e.Id));
        Assert.Equal(10, a.Distinct().Count());
        var indices = a.Select(e => int.Parse(e.Id[1..])).ToArray();
        Assert.Equal(indices.Order(), indices);
        Assert.NotEqual(Enumerable.Range(0, 10), indices);

        var task = TaskRegistry.Create("gsm", opts with { Limit = 2 });
        Assert.Equal(2, task.EvaluationSplit().Count);
        Assert.Equal(1000, task.ExtractionSplit().Count);   // the limit is for quick evaluation runs only
    }

    [Fact]
    public async Task GenerationAndChoiceMethodsRefuseTheWrongKind()
    {
        var gsm = TaskRegistry.Create("gsm", _data.DataDir);
        var ex = gsm.EvaluationSplit()[0];
        Assert.Contains("generation task", Assert.Throws<InvalidOperationException>(() => gsm.Continuations(ex)).Message);
        var mc = TaskRegistry.Create("truthfulqa-mc1", _data.DataDir);
        await Assert.ThrowsAsync<InvalidOperationException>(() => mc.ScoreAsync(mc.EvaluationSplit()[0], "x", ScoringContext.None));
    }
}
