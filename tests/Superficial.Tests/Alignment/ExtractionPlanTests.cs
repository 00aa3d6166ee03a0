using Superficial.Alignment;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Alignment;

/// <summary>
/// Extraction's memory budget without --max-memory comes from the device the models live on: a GPU's free memory,
/// not the host's MemAvailable (and the sum over a split). Capacities are given, so this runs without a GPU.
/// </summary>
public class ExtractionPlanTests
{
    static readonly ModelConfig SevenB = ModelShapes.Llama2_7B;
    const long G = 1_000_000_000;

    static ExtractionPlan Plan(string[] devices, Func<string, long> free, long? maxMemory = null)
    {
        var prompt = Enumerable.Range(0, 60).ToArray();
        var o = new ExtractionOptions { Dtype = ScalarType.BFloat16, MaxNewTokens = 64, TopK = 500, ChunkSize = 4, MaxMemory = maxMemory };
        return ExtractionPlan.Choose(SevenB, SevenB, ([prompt, prompt, prompt, prompt], [prompt, prompt, prompt, prompt]), [0], o, 4, devices, free);
    }

    // the host has little free memory, the GPUs a lot: which one the budget reads decides the plan
    static long Free(string device) => device switch { "cpu" => 8 * G, "cuda:0" => 40 * G, "cuda:1" => 16 * G, _ => throw new ArgumentException(device) };

    [Fact]
    public void TheBudgetIsTheFreeMemoryOfTheDeviceTheModelsLiveOn()
    {
        var gpu = Plan(["cuda:0"], Free);
        Assert.Equal((long)(40 * G * 0.9), gpu.Budget);
        Assert.True(gpu.Together);                       // 2 x 13.5 GB in 36 GB
        Assert.Contains("cuda:0's free memory", gpu.Describe());

        var small = Plan(["cuda:1"], Free);
        Assert.Equal((long)(16 * G * 0.9), small.Budget);
        Assert.False(small.Together);                    // one 13.5 GB model at a time in 14.4 GB
        Assert.Contains("one at a time per chunk", small.Describe());

        var split = Plan(["cuda:0", "cuda:1"], Free);    // layers split across both: their free memory adds up
        Assert.Equal((long)(56 * G * 0.9), split.Budget);
        Assert.Contains("cuda:0 + cuda:1", split.Describe());

        // on the CPU the host's memory is the budget: 7.2 GB holds neither model
        var e = Assert.Throws<InvalidOperationException>(() => Plan(["cpu"], Free));
        Assert.Contains("more than the memory budget 7.2 GB", e.Message);

        // --max-memory wins over every device
        var given = Plan(["cuda:0"], Free, maxMemory: 20 * G);
        Assert.Equal(20 * G, given.Budget);
        Assert.False(given.Together);
        Assert.Contains("given", given.Describe());
    }

    [Fact]
    public void ModelsLiveOnTheCpuByDefault() =>
        Assert.Equal(["cpu"], DeviceMemory.ModelDevices());
}
