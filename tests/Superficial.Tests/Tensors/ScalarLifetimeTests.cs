using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Serving;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Tensors;

/// <summary>Runs alone (after the parallel tests): the counts below are process-wide.</summary>
[CollectionDefinition("finalizer counts", DisableParallelization = true)]
public class FinalizerCountCollection;

/// <summary>
/// The code that runs models leaves no TorchSharp object (Scalar, Tensor, Generator) to the garbage collector's
/// finalizer. TorchSharp 0.107 does not keep a temporary Scalar alive through libtorch's call, so a collection that
/// another thread starts during the call can free it while libtorch reads it (see <c>Superficial.Tensors.Scalars</c>):
/// an object left to the finalizer is what makes that race possible. Counted with the runtime's FinalizeObject
/// events, so each check is deterministic: it does not wait for the race to strike.
/// </summary>
[Collection("finalizer counts")]
public class ScalarLifetimeTests : IDisposable
{
    readonly TempDir tmp = TestPaths.NewTempDir("scalar-lifetime");

    public void Dispose() => tmp.Dispose();

    static GenerationOptions Greedy => new() { MaxNewTokens = 5, StopIds = [] };
    static GenerationOptions Sampled => new() { MaxNewTokens = 5, StopIds = [], Temperature = 0.8, TopP = 0.9, Seed = 4 };

    static IReadOnlyList<int>[] Prompts(int vocab) =>
        [.. Enumerable.Range(0, 3).Select(p => (IReadOnlyList<int>)Enumerable.Range(0, 6 + 2 * p).Select(i => 3 + (i * 31 + p * 7) % (vocab - 3)).ToList())];

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    [InlineData("gemma2")]
    public void GenerationWithAHeadLeavesNothingToTheFinalizer(string family)
    {
        using var model = CausalLM.Create(Config(family), seed: 3);
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(5)) * 0.3, model.VocabSize);
        var gen = new TextGenerator(model, null);
        var prompts = Prompts(model.VocabSize);
        AssertNoneFinalized(() =>
        {
            gen.Generate(prompts, Greedy, new HeadTransform(head, 0.5));
            gen.Generate(prompts, Sampled, new HeadTransform(head, 1.0));
            gen.Generate(prompts, Greedy);
        });
    }

    [Fact]
    public void TransferRecoveryAndScoringLeaveNothingToTheFinalizer()
    {
        using var large = CausalLM.Create(TinyModels.Config(hidden: 48), seed: 1);
        using var small = CausalLM.Create(TinyModels.Config(hidden: 32), seed: 2);
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(5)) * 0.3, small.VocabSize);
        var gen = new TextGenerator(large, null);
        var prompts = Prompts(large.VocabSize);
        var requests = prompts.Select(p => new LogLikelihoodRequest(p.ToArray(), [5, 9, 11])).ToArray();
        AssertNoneFinalized(() =>
        {
            gen.Generate(prompts, Greedy, new SideModelOffset(small, head, 0.7, "small base"));
            gen.Generate(prompts, Sampled, new SideModelOffset(small, head, 1.0, "recovery base", readsOwnPrompt: true), null, default, prompts);
            LogLikelihood.Compute(large, requests, new SideModelOffset(small, head, 1.0, "small base"));
            LogLikelihood.Compute(large, requests, null);
        });
    }

    [Fact]
    public void ExtractionLeavesNothingToTheFinalizer()
    {
        var baseDir = TinyModels.WriteModel(tmp.File("base"), seed: 1);
        var alignedDir = TinyModels.WriteModel(tmp.File("aligned"), seed: 2);
        var prompts = Enumerable.Range(0, 5).Select(i => new ExtractionPrompt($"p{i}", new PromptSpec($"question {i}: the cat", $"question {i}: the cat"))).ToList();
        int run = 0;
        AssertNoneFinalized(() => Extraction.Run(baseDir, alignedDir, prompts, "t", tmp.File($"extract-{run++}"),
            new ExtractionOptions { TopK = 8, MaxNewTokens = 6, ChunkSize = 2, BatchSize = 3, StopStrings = [] }), loadsModels: true);
    }

    [Fact]
    public void ServingLeavesNothingToTheFinalizer()
    {
        var dir = TinyModels.WriteModel(tmp.File("served"), seed: 4);
        using var model = CausalLM.Load(dir);
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(5)) * 0.3, model.VocabSize);
        var tok = TextTokenizer.Load(dir);
        var variant = new ServedVariant("v", model, tok, new HeadTransform(head, 1.0), alpha: 1.0);
        AssertNoneFinalized(() =>
        {
            using var engine = new ServingEngine([variant], new EngineLimits { MaxBatch = 2, MaxQueue = 8 });
            var streams = Enumerable.Range(0, 4).Select(i => engine.Submit(new EngineRequest("v", variant.EncodeText($"the cat {i}"),
                i % 2 == 0 ? Greedy : Sampled with { Seed = i }))).ToArray();
            Assert.True(Task.WaitAll(streams.Select(s => s.Completion).ToArray(), TimeSpan.FromSeconds(60)));
        });
    }

    static ModelConfig Config(string family) => family switch
    {
        "llama" => TinyModels.Config(hidden: 32),
        "qwen2" => TinyModels.Config(hidden: 32) with { ModelType = "qwen2", QkvBias = true },
        "gemma2" => TinyModels.Config(hidden: 32) with
        {
            ModelType = "gemma2", NormPlusOne = true, ScaleEmbeddings = true, NormPlacement = NormPlacement.Sandwich, QueryPreAttnScalar = 16,
            AttnLogitSoftcap = 50.0, FinalLogitSoftcap = 30.0, SlidingWindow = 4, SlidingLayers = [0], HiddenAct = "gelu_pytorch_tanh",
        },
        _ => new ModelConfig
        {
            ModelType = "gpt2", VocabSize = TinyModels.Vocab, HiddenSize = 32, NumLayers = 2, NumHeads = 4, NumKvHeads = 4, HeadDim = 8,
            IntermediateSize = 64, MaxPositions = 64, NormEps = 1e-5, TieWordEmbeddings = true, QkvBias = true, OutputBias = true,
            MlpBias = true, HiddenAct = "gelu_new",
        },
    };

    /// <summary>
    /// Runs <paramref name="run"/> once to warm up (JIT, lazily built tables), frees what earlier code left, then
    /// counts the TorchSharp objects finalized during a second run and the collections after it. Building a model
    /// leaves TorchSharp's own module wrappers (and one tensor wrapper) to the finalizer, objects nothing reads again;
    /// where <paramref name="loadsModels"/>, only Scalars and Generators count.
    /// </summary>
    static void AssertNoneFinalized(Action run, bool loadsModels = false)
    {
        run();
        Drain();
        using var listener = new FinalizedObjects();
        listener.Sync();
        listener.Counting = true;
        run();
        Drain();
        listener.Sync();
        var torch = listener.TorchSharpCounts().Where(kv => !loadsModels || kv.Key is "TorchSharp.Scalar" or "TorchSharp.torch+Generator")
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.True(torch.Count == 0, "left to the finalizer: " + string.Join(", ", torch.Select(kv => $"{kv.Value} x {kv.Key}")));
        Assert.True(listener.Seen > 0, "no FinalizeObject event arrived at all: the check would pass whatever happened");
    }

    static void Drain()
    {
        for (int i = 0; i < 2; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        GC.Collect();
    }

    /// <summary>The runtime's FinalizeObject events (GC keyword, verbose), by type handle.</summary>
    sealed class FinalizedObjects : EventListener
    {
        readonly ConcurrentDictionary<nint, int> counts = new();
        volatile int lastGc = -1;
        public volatile bool Counting;
        public int Seen => counts.Values.Sum();

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName == "FinalizeObject" && Counting && e.Payload?[0] is nint type) counts.AddOrUpdate(type, 1, (_, v) => v + 1);
            else if (e.EventName?.StartsWith("GCEnd") == true && e.Payload?[0] is uint n) lastGc = (int)n;
        }

        /// <summary>Waits until the events of a collection started now have arrived (they are dispatched on another thread).</summary>
        public void Sync()
        {
            Leave();   // at least one FinalizeObject event per sync, so "none arrived" means the listener is broken
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            int target = GC.CollectionCount(0);
            var until = DateTime.UtcNow.AddSeconds(20);
            while (lastGc < target && DateTime.UtcNow < until) Thread.Sleep(20);
            Assert.True(lastGc >= target, $"the runtime's GC events did not arrive (last {lastGc}, expected {target})");
            Thread.Sleep(100);
        }

        public Dictionary<string, int> TorchSharpCounts()
        {
            var names = typeof(Tensor).Assembly.GetTypes().Where(t => !t.IsGenericTypeDefinition)
                .GroupBy(t => t.TypeHandle.Value).ToDictionary(g => g.Key, g => g.First().FullName!);
            return counts.Where(kv => names.ContainsKey(kv.Key)).ToDictionary(kv => names[kv.Key], kv => kv.Value);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static void Leave() => _ = new Finalizable();

    sealed class Finalizable { ~Finalizable() { } }
}
