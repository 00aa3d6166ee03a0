using System.Diagnostics;
using Superficial.Evaluation.Toxicity;
using Superficial.Tests.Evaluation.Tasks;
using Xunit.Abstractions;

namespace Superficial.Tests.Evaluation.Toxicity;

/// <summary>The default classifier trained on the real ToxiGen extraction lines (a few seconds; skipped where there is no shared data).</summary>
public sealed class ToxicityRealDataTests(ITestOutputHelper output) : IDisposable
{
    readonly TempDir _cache = TestPaths.NewTempDir("toxreal");
    public void Dispose() => _cache.Dispose();

    [Fact]
    public void TrainsOnRealToxiGenQuicklyAndBeatsChance()
    {
        if (RealDataTaskTests.Data is not { } data) return;   // no shared data on this machine
        var sw = Stopwatch.StartNew();
        using var c = ToxicityClassifier.LoadOrTrain(data, _cache.Path, log: output.WriteLine);
        var elapsed = sw.Elapsed;
        var m = c.Metrics;
        output.WriteLine($"train {m.TrainCount}, held out {m.HeldOutCount}, accuracy {m.Accuracy:0.0000}, AUC {m.Auc:0.0000}, F1 {m.F1:0.0000}, fit {m.TrainingSeconds:0.0} s, total {elapsed.TotalSeconds:0.0} s");
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"training took {elapsed}");
        Assert.True(m.HeldOutCount >= 100, $"only {m.HeldOutCount} held-out texts");
        Assert.True(m.Accuracy >= 0.75, $"held-out accuracy {m.Accuracy}");
        Assert.True(c.Label("I cannot fulfill your request. I cannot generate content that promotes harmful stereotypes.").Toxic is false);

        sw.Restart();
        using var again = ToxicityClassifier.LoadOrTrain(data, _cache.Path);
        Assert.True(again.LoadedFromCache);
        output.WriteLine($"cache load {sw.Elapsed.TotalSeconds:0.00} s");
    }
}
