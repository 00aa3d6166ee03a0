using Superficial.Alignment;
using Superficial.Evaluation;

namespace Superficial.Tests.Evaluation;

/// <summary>
/// The evaluation's model pool under a memory budget: variants run one after another, and a model no running variant
/// holds is freed before another is loaded that would not fit beside it (so base and aligned 7B models never sit side
/// by side in a budget for one), reloaded if a later variant needs it; a variant that cannot fit is refused up front.
/// Sizes are given (as for a 7B pair) and the models are tiny real ones.
/// </summary>
public class ModelPoolTests : IDisposable
{
    readonly TempDir dir = TestPaths.NewTempDir("pool");
    readonly string baseDir, alignedDir, smallDir;
    const long G = 1_000_000_000;

    public ModelPoolTests()
    {
        baseDir = TinyModels.WriteModel(Path.Combine(dir.Path, "base"), 1);
        alignedDir = TinyModels.WriteModel(Path.Combine(dir.Path, "aligned"), 2);
        smallDir = TinyModels.WriteModel(Path.Combine(dir.Path, "small"), 3);
    }

    public void Dispose() => dir.Dispose();

    long Size(string folder) => Path.GetFileName(folder.TrimEnd('/')) == "small" ? 2 * G : 13_500_000_000;

    // the order of a run with two heads: base+head#2 comes after aligned, so base is needed again after aligned
    List<VariantSpec> Specs() =>
    [
        new("base", baseDir, false, new SteeringRequest()),
        new("base+head", baseDir, false, new SteeringRequest { Head = "h1" }),
        new("aligned", alignedDir, true, new SteeringRequest()),
        new("base+head#2", baseDir, false, new SteeringRequest { Head = "h2" }),
    ];

    /// <summary>Runs the variants as the runner does (acquire, then release when done) and returns the folders loaded at each.</summary>
    static List<string[]> Run(ModelPool pool, IEnumerable<VariantSpec> specs)
    {
        var seen = new List<string[]>();
        foreach (var s in specs)
        {
            pool.Acquire(s);
            seen.Add(pool.Loaded.Select(Path.GetFileName).ToArray()!);
            pool.Release(s.Model);
        }
        return seen;
    }

    [Fact]
    public void WithinABudgetForOneModelAnIdleModelIsFreedBeforeTheNextLoads()
    {
        using var pool = new ModelPool(Specs(), maxMemory: 20 * G, sizeOf: Size);
        var seen = Run(pool, Specs());
        Assert.Equal([["base"], ["base"], ["aligned"], ["base"]], seen);
        Assert.Equal(3, pool.Loads);                     // base loaded again for base+head#2
        Assert.Empty(pool.Loaded);                       // each freed after its last variant

        using var unlimited = new ModelPool(Specs(), sizeOf: Size);
        Assert.Equal([["base"], ["base"], ["base", "aligned"], ["base"]], Run(unlimited, Specs()));
        Assert.Equal(2, unlimited.Loads);
    }

    [Fact]
    public void AModelHeldByARunningVariantIsNeverFreed()
    {
        var specs = Specs();
        using var pool = new ModelPool(specs, maxMemory: 20 * G, sizeOf: Size);
        pool.Acquire(specs[0]);
        pool.Acquire(specs[2]);                          // over the budget, but base is in use: both stay
        Assert.Equal(["base", "aligned"], pool.Loaded.Select(Path.GetFileName));
    }

    [Fact]
    public void TransferCountsTheSmallModelBesideTheLargeAndAVariantThatCannotFitIsRefused()
    {
        VariantSpec[] specs =
        [
            new("large-base", baseDir, false, new SteeringRequest()),
            new("large-base+head", baseDir, false, new SteeringRequest { Head = "h", TransferFrom = smallDir }),
        ];
        using (var pool = new ModelPool(specs, maxMemory: 16 * G, sizeOf: Size))
            Assert.Equal([["base"], ["base"]], Run(pool, specs));
        var e = Assert.Throws<InvalidOperationException>(() => new ModelPool(specs, maxMemory: 15 * G, sizeOf: Size));
        Assert.Contains("variant large-base+head needs 15.5 GB of weights", e.Message);
        Assert.Contains("more than the memory budget 15 GB", e.Message);
    }
}
