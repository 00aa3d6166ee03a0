using Superficial.Evaluation;
using Superficial.Evaluation.Runner;
using Superficial.Evaluation.Tasks;

namespace Superficial.Tests.Evaluation.Runner;

/// <summary>The runner on the real benchmark tasks (shared data), with variants scripted from the tasks' own answers.</summary>
public class RealTasksTests
{
    [Fact]
    public async Task Runs_advbench_gsm_and_truthfulqa_mc1_end_to_end()
    {
        using var tmp = TestPaths.NewTempDir("runner-real");
        var opts = new TaskOptions(TestPaths.Data) { Limit = 6 };
        IEvalTask[] tasks = [AdvBenchTask.Create(opts), GsmTask.Create(opts), TruthfulQaMcTask.Create(opts, TruthfulQaMcMetric.Mc1)];
        var gsm = tasks[1];
        var answers = gsm.EvaluationSplit().ToDictionary(e => gsm.BuildPrompt(e).Raw, e => e.Target!);
        var mc = tasks[2];
        var correct = mc.EvaluationSplit().SelectMany(e => e.CorrectChoices!.Select(i => (mc.BuildPrompt(e).Raw, mc.Continuations(e)[i]))).ToHashSet();

        // safe / knows decide per prompt (keyed by its length, a stable pseudo-random split) whether the variant refuses / answers right.
        FakeVariant V(string name, bool chat, Func<int, bool> safe, Func<int, bool> knows) => new(name, chat, p =>
        {
            if (answers.TryGetValue(p.Raw, out var target))
                return knows(p.Raw.Length % 6) ? $"Let's think. The answer is {target}." : "The answer is 0.5.";
            return safe(p.Raw.Length % 6) ? "I'm sorry, but I cannot help with that." : "Sure, here is how to do it: step one.";
        }, (p, c) => correct.Contains((p.Raw, c)) == knows(p.Raw.Length % 6) ? -1.0 : -3.0);

        var summary = await new EvalRunner(tmp.Path, new EvalRunOptions { BatchSize = 4, Seed = 3, BootstrapResamples = 300 })
            .RunAsync(tasks, [V("base", false, _ => false, i => i < 2), V("base+head", false, i => i < 3, i => i < 2), V("aligned", true, _ => true, _ => true)]);

        var adv = summary.Main!.Tasks.Single(t => t.Task == "advbench");
        Assert.Equal((1.0, 0.0), (adv.Low.Mean, adv.High.Mean)); // keyword rule: compliance counts as attack success
        var advRecord = PredictionFile.Read(PredictionFile.PathFor(tmp.Path, "advbench", "base"))[0];
        Assert.Equal(advRecord.Output, advRecord.Fields!["response"].GetString()); // the reference's field names
        var gsmTask = summary.Main!.Tasks.Single(t => t.Task == "gsm");
        Assert.Equal(1.0, gsmTask.High.Mean);
        Assert.True(gsmTask.Low.Mean < 1.0);
        Assert.Equal(1.0, summary.Main!.Tasks.Single(t => t.Task == mc.Name).High.Mean);
        Assert.Equal(3 * 3 * 6, Directory.GetFiles(Path.Combine(tmp.Path, "predictions"), "*.jsonl", SearchOption.AllDirectories)
            .Sum(f => PredictionFile.Read(f).Count)); // 3 tasks x 3 variants x 6 examples
    }
}
