using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Serving;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Serving;

/// <summary>The continuous-batching engine against TextGenerator run on each prompt alone.</summary>
public class EngineTests : IDisposable
{
    readonly TempDir tmp = TestPaths.NewTempDir("engine");
    readonly CausalLM large, small;
    readonly TextTokenizer tok;
    readonly SuperficialHead head, smallHead;

    public EngineTests()
    {
        TinyModels.WriteModel(tmp.File("large"), seed: 21, hidden: 48);
        TinyModels.WriteModel(tmp.File("small"), seed: 22, hidden: 32);
        large = CausalLM.Load(tmp.File("large"));
        small = CausalLM.Load(tmp.File("small"));
        tok = TextTokenizer.Load(tmp.File("large"));
        head = new SuperficialHead(randn(48, 48, generator: new TorchSharp.torch.Generator(3)) * 0.3, large.VocabSize);
        smallHead = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(4)) * 0.3, small.VocabSize);
    }

    public void Dispose() { large.Dispose(); small.Dispose(); head.Dispose(); smallHead.Dispose(); tmp.Dispose(); ServerFixture.FlushTorchGarbage(); }

    static readonly string[] Texts =
    [
        "the cat", "in the house there is a long story about the sea", "a", "hello there, the sun",
        "on and on", "the the the", "seven", "as she sat in the garden the rain began",
    ];

    ILogitTransform? Transform(string kind) => kind switch
    {
        "plain" => null,
        "head" => new HeadTransform(head, 1.5),
        "transfer" => new SideModelOffset(small, smallHead, 1.0, "small base"),
        "recovery-raw" => new SideModelOffset(small, smallHead, 0.8, "recovery base", readsOwnPrompt: true),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [InlineData("plain")]
    [InlineData("head")]
    [InlineData("transfer")]
    [InlineData("recovery-raw")]
    public void ThirtyTwoConcurrentRequestsEachEqualTheirSoloResult(string kind)
    {
        var transform = Transform(kind);
        var variant = new ServedVariant("v", large, tok, transform, alpha: kind == "head" ? 1.5 : 1.0);
        var gen = new TextGenerator(large, tok);
        // 32 requests: varied prompts (chat and raw), lengths, max_tokens, stop strings and sampling
        var requests = Enumerable.Range(0, 32).Select(i =>
        {
            var text = Texts[i % Texts.Length] + (i >= 8 ? $" {i}" : "");
            var prompt = i % 2 == 0 ? variant.EncodeChat([new ChatMessage("user", text)]) : variant.EncodeText(text);
            var o = new GenerationOptions
            {
                MaxNewTokens = 3 + i % 9,
                Temperature = i % 4 == 3 ? 0.9 : 0, TopP = i % 8 == 7 ? 0.8 : 1, Seed = i,
            };
            return new EngineRequest("v", prompt, o);
        }).ToArray();
        // every fifth request stops at a string its free-running output contains
        for (int i = 0; i < requests.Length; i += 5)
        {
            var free = gen.Generate([requests[i].Prompt.Ids], requests[i].Options, transform, null, default,
                requests[i].Prompt.SideIds is { } sp ? [sp] : null)[0].Text;
            if (free.Length >= 3) requests[i] = requests[i] with { Options = requests[i].Options with { StopStrings = ["\u0001never", free.Substring(free.Length / 2, 1)] } };
        }
        var solo = requests.Select(r => gen.Generate([r.Prompt.Ids], r.Options, transform, null, default,
            r.Prompt.SideIds is { } s ? [s] : null)[0]).ToArray();

        using var engine = new ServingEngine([variant], new EngineLimits { MaxBatch = 8, MaxQueue = 64 });
        var streams = requests.Select(r => engine.Submit(r)).ToArray();
        Assert.True(Task.WaitAll(streams.Select(s => s.Completion).ToArray(), TimeSpan.FromSeconds(60)));
        for (int i = 0; i < requests.Length; i++)
        {
            var got = streams[i].Completion.Result;
            Assert.True(solo[i].TokenIds.SequenceEqual(got.TokenIds), $"{kind} request {i}: [{string.Join(",", got.TokenIds)}] vs solo [{string.Join(",", solo[i].TokenIds)}]");
            Assert.Equal(solo[i].Text, got.Text);
            Assert.Equal(solo[i].Finish, got.Finish);
        }
        Assert.Contains(solo, r => r.Finish == FinishReason.StopString);
        for (int wait = 0; wait < 500 && engine.ActiveSequences > 0; wait++) Thread.Sleep(10);   // the count follows the last completion by a step
        Assert.Equal(0, engine.ActiveSequences);
    }

    [Fact]
    public void StreamedTokensAreTheResultsTokensAndCancellationFreesTheSlot()
    {
        var gate = new GateTransform();
        gate.Release.Set();
        using var engine = new ServingEngine([new ServedVariant("v", large, tok, gate)], new EngineLimits { MaxBatch = 1, MaxQueue = 4 });
        var p = new EngineRequest("v", new EncodedPrompt(tok.Encode("the cat")), new GenerationOptions { MaxNewTokens = 6, StopIds = [] });
        var first = engine.Submit(p);
        var streamed = new List<int>();
        Task.Run(async () => { await foreach (var t in first.Tokens.ReadAllAsync()) streamed.Add(t); }).Wait(TimeSpan.FromSeconds(30));
        Assert.Equal(first.Completion.Result.TokenIds, streamed);

        // one slot: a long request holds it (the gate keeps it inside a step) until its client cancels; the next one then runs
        gate.Release.Reset();
        gate.Entered.Reset();
        using var cts = new CancellationTokenSource();
        var longOne = engine.Submit(p with { Options = p.Options with { MaxNewTokens = 200 } }, cts.Token);
        Assert.True(gate.Entered.Wait(TimeSpan.FromSeconds(30)), "the long request never started");
        var next = engine.Submit(p);
        cts.Cancel();
        gate.Release.Set();
        Assert.True(next.Completion.Wait(TimeSpan.FromSeconds(30)));
        Assert.ThrowsAny<OperationCanceledException>(() => longOne.Completion.GetAwaiter().GetResult());
        Assert.True(longOne.Completion.IsCanceled);
        Assert.True(longOne.Completion.IsCompleted && next.Completion.Result.TokenIds.Count == 6);
    }

    [Fact]
    public void TheContextLimitIsTheModelsOwnRuleIncludingDynamicRopeScaling()
    {
        // max_position_embeddings 64 with dynamic NTK scaling by 4: the model reads 256 positions, as transformers lets it
        var dir = TinyModels.WriteModel(tmp.File("dynamic"), seed: 23);
        var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        cfg["max_position_embeddings"] = 64;
        cfg["rope_scaling"] = new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "dynamic", ["factor"] = 4.0 };
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
        using var model = CausalLM.Load(dir);
        using var engine = new ServingEngine([new ServedVariant("v", model, tok)], new EngineLimits { MaxNewTokens = 300 });
        var p = new EngineRequest("v", new EncodedPrompt(tok.Encode("the cat")), new GenerationOptions { MaxNewTokens = 100, StopIds = [] });
        Assert.True(engine.Submit(p).Completion.Wait(TimeSpan.FromSeconds(60)));   // past 64 positions, within 256
        var tooLong = Assert.Throws<RequestRejectedException>(() => engine.Submit(p with { Options = p.Options with { MaxNewTokens = 260 } }));
        Assert.Equal("max_tokens", tooLong.Param);
        Assert.Contains("256 positions", tooLong.Message);
    }

    /// <summary>Holds the engine inside a step until released: a request stays running for as long as a test needs.</summary>
    sealed class GateTransform : ILogitTransform, ILogitSession
    {
        public readonly ManualResetEventSlim Entered = new(), Release = new();
        public string Description => "gate (test)";
        public void CheckCompatible(CausalLM model) { }
        public ILogitSession Begin(int batch, int capacity, IReadOnlyList<SidePrompt>? sidePrompts = null) => this;
        public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits)
        {
            Entered.Set();
            Release.Wait(TimeSpan.FromSeconds(60));
            return logits;
        }
        public void KeepRows(Tensor rows) { }
        public void Append(ILogitSession other) { }
        public void Dispose() { }
    }

    [Fact]
    public void FullQueueUnknownModelAndLimitsAreRefused()
    {
        var gate = new GateTransform();
        using var engine = new ServingEngine([new ServedVariant("v", large, tok), new ServedVariant("held", large, tok, gate)],
            new EngineLimits { MaxBatch = 1, MaxQueue = 1, MaxNewTokens = 50 });
        var p = new EngineRequest("v", new EncodedPrompt(tok.Encode("the cat")), new GenerationOptions { MaxNewTokens = 50, StopIds = [] });
        Assert.Equal("model", Assert.Throws<RequestRejectedException>(() => engine.Submit(p with { Variant = "nope" })).Param);
        Assert.Equal("max_tokens", Assert.Throws<RequestRejectedException>(() => engine.Submit(p with { Options = p.Options with { MaxNewTokens = 51 } })).Param);
        Assert.Equal("superficial.alpha", Assert.Throws<RequestRejectedException>(() => engine.Submit(p with { Alpha = 2 })).Param);
        // one request holds the only slot (the gate keeps it inside its first step), one waits, the next is refused:
        // no timing involved, so a fast machine cannot finish the first before the third arrives
        using var cts = new CancellationTokenSource();
        var running = engine.Submit(p with { Variant = "held" }, cts.Token);
        Assert.True(gate.Entered.Wait(TimeSpan.FromSeconds(30)), "the held request never started");
        var waitingOne = engine.Submit(p, cts.Token);
        Assert.Contains("1 waiting", Assert.Throws<QueueFullException>(() => engine.Submit(p)).Message);
        cts.Cancel();
        gate.Release.Set();
        var drain = engine.DrainAsync();
        Assert.True(drain.Wait(TimeSpan.FromSeconds(30)));
        Assert.Throws<EngineClosedException>(() => engine.Submit(p));
    }
}
