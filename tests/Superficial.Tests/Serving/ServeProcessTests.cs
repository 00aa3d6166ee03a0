using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Server;
using Superficial.Serving;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Serving;

/// <summary>
/// The command as a user runs it (a process: generate and serve), and the behaviours that need a slot held
/// for a while (queue overflow, a client leaving mid-stream): on a wider tiny model so a long request takes
/// long enough.
/// </summary>
public class ServeProcessTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "Superficial.Cli.dll");

    static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        return Process.Start(psi)!;
    }

    static (int code, string stdout, string stderr) Run(params string[] args)
    {
        using var p = Start(args);
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "the command did not finish");
        return (p.ExitCode, output, err.Result);
    }

    [Theory]
    [InlineData("base+head")]
    [InlineData("transfer")]
    public async Task GreedyServeEqualsTheGenerateCommand(string variant)
    {
        string[] steer = variant == "base+head" ? ["--head", f.HeadFile, "--alpha", "1.5"] : ["--head", f.SmallHeadFile, "--transfer-from", f.SmallDir];
        var (code, stdout, stderr) = Run(["generate", "--model", f.LargeDir, "--prompt", "the cat sat", "--chat", "--max-new-tokens", "10", .. steer]);
        Assert.True(code == 0, stderr + stdout);
        var served = (await f.Chat(variant).CompleteChatAsync([new UserChatMessage("the cat sat")],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 })).Value.Content[0].Text;
        Assert.Equal(served + "\n", stdout); // generate's stdout is the text alone; the transform and statistics go to stderr
        Assert.Contains("10 tokens in", stderr);
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);

    [Fact]
    public async Task SigtermLetsRunningAndQueuedRequestsFinishThenExits()
    {
        using var slow = new TempDir("slow-serve");
        TinyModels.WriteModel(slow.Path, seed: 41, hidden: 128, layers: 4);
        using (var h = new Superficial.Alignment.SuperficialHead(TorchSharp.torch.randn(128, 128, generator: new TorchSharp.torch.Generator(41)) * 0.1, TinyModels.Vocab) { BaseModel = Superficial.Models.ModelIdentity.Of(slow.Path) }) h.Save(slow.File("head.safetensors"));
        using var p = Start("serve", "--model", slow.Path, "--name", "base+head", "--head", slow.File("head.safetensors"), "--port", "0", "--max-batch", "1", "--drain-seconds", "60");
        var err = p.StandardError.ReadToEndAsync();
        string? line;
        Uri? url = null;
        while ((line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))) is not null)
            if (line.StartsWith("serving ")) { url = new Uri(new Uri(line.Split(" on ")[1].Split(' ')[0]), "/"); break; }
        if (url is null) Assert.Fail("no 'serving ... on URL' line; stderr: " + await err);
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(120) };
        var body = new JsonObject
        {
            ["model"] = "base+head", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "the cat sat" }),
            ["max_tokens"] = 100, ["temperature"] = 0, ["stream"] = true,
        }.ToJsonString();
        // three streams; one slot: while the first runs the others wait in the queue
        var responses = new List<HttpResponseMessage>();
        for (int i = 0; i < 3; i++)
        {
            var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            responses.Add(await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead));
        }
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(0, kill(p.Id, 15));
        foreach (var r in responses)
        {
            var events = (await r.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("data: [DONE]", events[^1]);
            Assert.Equal("length", (string?)JsonNode.Parse(events[^2]["data: ".Length..])!["choices"]![0]!["finish_reason"]);
        }
        Assert.True(p.WaitForExit(60_000), "the server did not exit after draining");
        var stdout = await p.StandardOutput.ReadToEndAsync();
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stdout} {await err}");
        Assert.Contains("stopped after draining", stdout);
        var log = await err;
        Assert.Contains("draining:", log);
        Assert.Equal(3, log.Split('\n').Count(l => l.Contains("finish=length") && l.Contains("completion_tokens=100")));
        Assert.DoesNotContain("the cat sat", log);
    }

    /// <summary>
    /// Leaves the logits alone and takes <paramref name="ms"/> per decoding step, so that a 120-token request holds its
    /// slot for at least 120 x that however fast decoding gets (a wider model did that until the fused decoding step made
    /// it 120 tokens in ~30 ms). 5 ms (0.6 s) was too short once on a loaded CI machine for noticing a client that left.
    /// </summary>
    sealed class Paced(int ms) : ILogitTransform
    {
        public string Description => $"{ms} ms per step";
        public void CheckCompatible(CausalLM model) { }
        public ILogitSession Begin(int batch, int capacity, IReadOnlyList<SidePrompt>? sidePrompts = null) => new Session(ms);
        sealed class Session(int ms) : ILogitSession
        {
            public Tensor Apply(StepContext step, Tensor hidden, Tensor select, Tensor logits) { Thread.Sleep(ms); return logits; }
            public void KeepRows(Tensor rows) { }
            public void Append(ILogitSession other) => other.Dispose();
            public void Dispose() { }
        }
    }

    /// <summary>A model whose 120-token request holds its slot for a while (<see cref="Paced"/>).</summary>
    sealed class Slow : IDisposable
    {
        public readonly TempDir Tmp = TestPaths.NewTempDir("slow");
        public readonly CausalLM Model;
        public readonly TextTokenizer Tok;
        public readonly ServingEngine Engine;
        public readonly OpenAiServer Server;
        public readonly List<string> Log = [];
        public Slow(int maxQueue, int msPerStep)
        {
            TinyModels.WriteModel(Tmp.Path, seed: 40, hidden: 128, layers: 4);
            Model = CausalLM.Load(Tmp.Path);
            Tok = TextTokenizer.Load(Tmp.Path);
            Engine = new ServingEngine([new ServedVariant("slow", Model, Tok, new Paced(msPerStep))], new EngineLimits { MaxBatch = 1, MaxQueue = maxQueue });
            Server = OpenAiServer.StartAsync(Engine, new ServerOptions { Port = 0, Log = l => { lock (Log) Log.Add(l); } }).GetAwaiter().GetResult();
        }
        public void Dispose()
        {
            Server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Engine.Dispose();
            Model.Dispose();
            Tmp.Dispose();
            ServerFixture.FlushTorchGarbage();
        }
    }

    static StringContent Body(int maxTokens, bool stream) => new(new JsonObject
    {
        ["model"] = "slow", ["prompt"] = "the sea", ["max_tokens"] = maxTokens, ["temperature"] = 0, ["stream"] = stream,
    }.ToJsonString(), Encoding.UTF8, "application/json");

    [Fact]
    public async Task AFullQueueAnswers429WithRetryAfter()
    {
        using var slow = new Slow(maxQueue: 1, msPerStep: 10);   // 1.2 s per running request: the 8 arrive meanwhile
        using var http = new HttpClient { BaseAddress = slow.Server.BaseAddress };
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => http.PostAsync("v1/completions", Body(120, false))));
        var refused = results.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        Assert.All(results.Except(refused), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.True(results.Length - refused.Count >= 1, "the running request finishes");
        foreach (var r in refused)
        {
            Assert.NotNull(r.Headers.RetryAfter);
            Assert.Equal("queue_full", (string?)JsonNode.Parse(await r.Content.ReadAsStringAsync())!["error"]!["code"]);
        }
    }

    [Fact]
    public async Task AClientThatLeavesMidStreamFreesItsSlot()
    {
        using var slow = new Slow(maxQueue: 4, msPerStep: 25);   // 3 s to notice the client left; it takes milliseconds
        // no draining of an abandoned response: disposing it closes the connection, as a client that goes away does
        using var http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = slow.Server.BaseAddress };
        var first = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = Body(120, true) }, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await first.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync()); // generation has begun
        first.Dispose(); // the client goes away
        var watch = Stopwatch.StartNew();
        var second = await http.PostAsync("v1/completions", Body(5, false));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        for (int i = 0; i < 600 && slow.Engine.ActiveSequences > 0; i++) await Task.Delay(10);
        Assert.Equal(0, slow.Engine.ActiveSequences);
        Assert.True(slow.Engine.TokensGenerated < 120, $"{slow.Engine.TokensGenerated} tokens: the abandoned request kept generating");
        lock (slow.Log) Assert.Contains(slow.Log, l => l.Contains("finish=cancelled"));
    }
}
