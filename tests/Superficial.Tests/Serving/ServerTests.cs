using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Server;
using Superficial.Serving;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Serving;

/// <summary>Tiny model folders, a head file, and a server with three variants (plain, base+head, transfer) on a loopback port.</summary>
public sealed class ServerFixture : IDisposable
{
    public readonly TempDir Tmp = TestPaths.NewTempDir("serve");
    public readonly CausalLM Large, Small;
    public readonly TextTokenizer Tok;
    public readonly Steering HeadSteering, TransferSteering;
    public readonly ServingEngine Engine;
    public readonly OpenAiServer Server;
    public readonly List<string> Log = [];
    public string LargeDir => Tmp.File("large");
    public string SmallDir => Tmp.File("small");
    public string HeadFile => Tmp.File("head.safetensors");
    public string SmallHeadFile => Tmp.File("small-head.safetensors");

    public ServerFixture()
    {
        TinyModels.WriteModel(LargeDir, seed: 31, hidden: 48);
        TinyModels.WriteModel(SmallDir, seed: 32, hidden: 32);
        using (var h = new SuperficialHead(randn(48, 48, generator: new TorchSharp.torch.Generator(5)) * 0.3, TinyModels.Vocab)) h.Save(HeadFile);
        using (var h = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(6)) * 0.3, TinyModels.Vocab)) h.Save(SmallHeadFile);
        Large = CausalLM.Load(LargeDir);
        Small = CausalLM.Load(SmallDir);
        Tok = TextTokenizer.Load(LargeDir);
        HeadSteering = Steering.Build(Large, Tok, new SteeringRequest { Head = HeadFile, Alpha = 1.5 });
        TransferSteering = Steering.Build(Large, Tok, new SteeringRequest { Head = SmallHeadFile, TransferFrom = SmallDir });
        Engine = new ServingEngine(
        [
            new ServedVariant("base", Large, Tok),
            new ServedVariant("base+head", Large, Tok, HeadSteering.Transform, alpha: 1.5),
            new ServedVariant("transfer", Large, Tok, TransferSteering.Transform),
        ], new EngineLimits { MaxBatch = 8, MaxQueue = 64, MaxNewTokens = 200 });
        Server = OpenAiServer.StartAsync(Engine, new ServerOptions { Port = 0, MaxBodyBytes = 64 * 1024, Log = l => { lock (Log) Log.Add(l); } })
            .GetAwaiter().GetResult();
    }

    public ChatClient Chat(string model) =>
        new(model, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(Server.BaseAddress, "v1") });

    public void Dispose()
    {
        Server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Engine.Dispose();
        HeadSteering.Dispose(); TransferSteering.Dispose();
        Large.Dispose(); Small.Dispose();
        Tmp.Dispose();
        FlushTorchGarbage();
    }

    /// <summary>
    /// Frees now, between test classes, what the server's threads left to finalizers (tensors, scalars), so the
    /// finalizer thread does not free libtorch objects while a later test drives libtorch.
    /// </summary>
    public static void FlushTorchGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}

/// <summary>The OpenAI-compatible server through the official OpenAI .NET client and plain HTTP, on loopback.</summary>
public class ServerTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    static readonly ChatCompletionOptions Greedy8 = new() { Temperature = 0, MaxOutputTokenCount = 8 };

    GenerationResult Solo(string variant, IReadOnlyList<int> ids, GenerationOptions o, IReadOnlyList<int>? side = null) =>
        new TextGenerator(f.Large, f.Tok).Generate([ids], o, f.Engine.Find(variant)!.Transform, null, default, side is null ? null : [side])[0];

    [Theory]
    [InlineData("base")]
    [InlineData("base+head")]
    [InlineData("transfer")]
    public async Task ChatCompletionEqualsTheGeneratorWithUsageAndFinishReason(string variant)
    {
        var response = (await f.Chat(variant).CompleteChatAsync([new UserChatMessage("the cat sat")], Greedy8)).Value;
        var ids = f.Engine.Find(variant)!.EncodeChat([new Superficial.Text.ChatMessage("user", "the cat sat")]).Ids;
        var solo = Solo(variant, ids, new GenerationOptions { MaxNewTokens = 8 });
        Assert.Equal(solo.Text, response.Content[0].Text);
        Assert.Equal(ids.Count, response.Usage.InputTokenCount);
        Assert.Equal(solo.TokenIds.Count, response.Usage.OutputTokenCount);
        Assert.Equal(ids.Count + solo.TokenIds.Count, response.Usage.TotalTokenCount);
        Assert.Equal(solo.Finish == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);
        Assert.StartsWith("chatcmpl-", response.Id);
        Assert.Equal(variant, response.Model);
    }

    [Fact]
    public async Task StreamingChatAddsUpToTheSameTextWithUsage()
    {
        var client = f.Chat("base+head");
        var whole = (await client.CompleteChatAsync([new UserChatMessage("hello there")], Greedy8)).Value;
        var pieces = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int chunks = 0;
        await foreach (var u in client.CompleteChatStreamingAsync([new UserChatMessage("hello there")], Greedy8))
        {
            chunks++;
            foreach (var part in u.ContentUpdate) pieces.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal(whole.Content[0].Text, pieces.ToString());
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.OutputTokenCount, usage!.OutputTokenCount);
        Assert.True(chunks >= 3, $"{chunks} chunks");
    }

    [Fact]
    public async Task StopStringsCutTheTextAndMaxTokensEndsWithLength()
    {
        var client = f.Chat("base");
        var free = (await client.CompleteChatAsync([new UserChatMessage("on and on")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 })).Value;
        Assert.Equal(ChatFinishReason.Length, free.FinishReason);
        Assert.Equal(12, free.Usage.OutputTokenCount);
        var text = free.Content[0].Text;
        var stop = text.Substring(text.Length / 2, 1);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        options.StopSequences.Add(stop);
        var stopped = (await client.CompleteChatAsync([new UserChatMessage("on and on")], options)).Value;
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], stopped.Content[0].Text);
        var streamed = new StringBuilder();
        await foreach (var u in client.CompleteChatStreamingAsync([new UserChatMessage("on and on")], options))
            foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(stopped.Content[0].Text, streamed.ToString());
        var three = (await client.CompleteChatAsync([new UserChatMessage("on and on")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 3 })).Value;
        Assert.Equal(3, three.Usage.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, three.FinishReason);
    }

    [Fact]
    public async Task CompletionsEndpointStreamsAndNotAndEqualsTheGenerator()
    {
        using var http = new HttpClient { BaseAddress = f.Server.BaseAddress };
        var body = new JsonObject { ["model"] = "transfer", ["prompt"] = "the sea", ["max_tokens"] = 6, ["temperature"] = 0 };
        var r = await http.PostAsync("v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var json = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        var solo = Solo("transfer", f.Tok.Encode("the sea"), new GenerationOptions { MaxNewTokens = 6 });
        Assert.Equal("text_completion", (string)json["object"]!);
        Assert.Equal(solo.Text, (string)json["choices"]![0]!["text"]!);
        Assert.Equal("length", (string)json["choices"]![0]!["finish_reason"]!);
        Assert.Equal(6, (int)json["usage"]!["completion_tokens"]!);

        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        var s = await http.PostAsync("v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal("text/event-stream", s.Content.Headers.ContentType!.MediaType);
        var events = (await s.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        Assert.Equal(solo.Text, string.Concat(chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => (string)c["choices"]![0]!["text"]!)));
        Assert.Equal(6, (int)chunks[^1]["usage"]!["completion_tokens"]!);
        Assert.Equal("length", (string)chunks[^2]["choices"]![0]!["finish_reason"]!);
    }

    [Fact]
    public async Task ThirtyTwoConcurrentRequestsEachEqualTheirSoloResult()
    {
        var prompts = Enumerable.Range(0, 32).Select(i => (variant: new[] { "base", "base+head", "transfer" }[i % 3], text: $"story {i}: the " + new string('a', i % 7))).ToArray();
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 4 + 0 };
        var solo = new List<string>();
        foreach (var (v, t) in prompts) solo.Add((await f.Chat(v).CompleteChatAsync([new UserChatMessage(t)], options)).Value.Content[0].Text);
        var together = await Task.WhenAll(prompts.Select(async p =>
            (await f.Chat(p.variant).CompleteChatAsync([new UserChatMessage(p.text)], options)).Value.Content[0].Text));
        Assert.Equal(solo, together);
    }

    static async Task<(HttpStatusCode status, JsonNode? error, HttpResponseMessage response)> Post(HttpClient http, string path, string body)
    {
        var r = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length > 0 && text[0] == '{' ? JsonNode.Parse(text)!["error"] : null, r);
    }

    [Fact]
    public async Task MalformedJsonUnknownModelOversizedBodyAndBadFieldsGetOpenAiErrors()
    {
        using var http = new HttpClient { BaseAddress = f.Server.BaseAddress };
        var (status, error, _) = await Post(http, "v1/chat/completions", "{\"model\": \"base\", \"messages\": [");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", (string)error!["type"]!);
        Assert.Contains("not valid JSON", (string)error["message"]!);

        (status, error, _) = await Post(http, "v1/chat/completions", "{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": \"ten\"}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("max_tokens", (string)error!["param"]!);

        (status, error, _) = await Post(http, "v1/chat/completions", "{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 5000}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("max_tokens", (string)error!["param"]!);

        (status, error, _) = await Post(http, "v1/chat/completions", "{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"superficial\": {\"alpha\": 2}}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("superficial.alpha", (string)error!["param"]!);

        var unknown = await Assert.ThrowsAsync<ClientResultException>(() => f.Chat("gpt-4").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, unknown.Status);
        Assert.Contains("base+head", unknown.Message);

        var big = new JsonObject { ["model"] = "base", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = new string('x', 100_000) }) };
        (status, error, _) = await Post(http, "v1/chat/completions", big.ToJsonString());
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", (string)error!["code"]!);
        // the server still answers
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("health")).StatusCode);
    }

    [Fact]
    public async Task ModelsHealthAndMetricsDescribeTheServer()
    {
        using var http = new HttpClient { BaseAddress = f.Server.BaseAddress };
        await f.Chat("base").CompleteChatAsync([new UserChatMessage("hi")], Greedy8);
        var models = JsonNode.Parse(await http.GetStringAsync("v1/models"))!["data"]!.AsArray().Select(m => (string)m!["id"]!).ToList();
        Assert.Equal(["base", "base+head", "transfer"], models);
        Assert.Equal("ok", (string)JsonNode.Parse(await http.GetStringAsync("health"))!["status"]!);
        var metrics = await http.GetStringAsync("metrics");
        foreach (var name in new[] { "superficial_requests_total{endpoint=\"chat\",model=\"base\",status=\"200\"}", "superficial_time_to_first_token_seconds_bucket",
                     "superficial_request_duration_seconds_bucket", "superficial_queue_depth", "superficial_tokens_per_second", "superficial_completion_tokens_total{model=\"base\"}" })
            Assert.Contains(name, metrics);
    }

    [Fact]
    public async Task RequestLogsLeaveThePromptOutUnlessAsked()
    {
        await f.Chat("base").CompleteChatAsync([new UserChatMessage("my secret plan")], Greedy8);
        lock (f.Log)
        {
            Assert.Contains(f.Log, l => l.Contains("model=base ") && l.Contains("completion_tokens=8"));
            Assert.DoesNotContain(f.Log, l => l.Contains("secret"));
        }
        var lines = new List<string>();
        using var engine = new ServingEngine([new ServedVariant("base", f.Large, f.Tok)]); // stopping a server drains its engine
        await using var server = await OpenAiServer.StartAsync(engine, new ServerOptions { Port = 0, LogPrompts = true, Log = lines.Add });
        var client = new ChatClient("base", new ApiKeyCredential("x"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "v1") });
        await client.CompleteChatAsync([new UserChatMessage("my secret plan")], Greedy8);
        Assert.Contains(lines, l => l.Contains("my secret plan"));
    }

    [Fact]
    public async Task ApiKeyIsRequiredOffLoopbackAndCheckedWhenSet()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => OpenAiServer.StartAsync(f.Engine, new ServerOptions { Host = "0.0.0.0", Port = 0 }));
        Assert.Contains("--api-key", e.Message);
        using var engine = new ServingEngine([new ServedVariant("base", f.Large, f.Tok)]);
        await using var server = await OpenAiServer.StartAsync(engine, new ServerOptions { Port = 0, ApiKey = "s3cret", Log = _ => { } });
        var wrong = new ChatClient("base", new ApiKeyCredential("guess"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "v1") });
        Assert.Equal(401, (await Assert.ThrowsAsync<ClientResultException>(() => wrong.CompleteChatAsync([new UserChatMessage("hi")], Greedy8))).Status);
        var right = new ChatClient("base", new ApiKeyCredential("s3cret"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "v1") });
        Assert.Equal(8, (await right.CompleteChatAsync([new UserChatMessage("hi")], Greedy8)).Value.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task TheChatClientOfMicrosoftExtensionsAiGivesTheServersAnswer()
    {
        Microsoft.Extensions.AI.IChatClient client = new EngineChatClient(f.Engine, "base+head");
        var local = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "the cat sat")], new Microsoft.Extensions.AI.ChatOptions { MaxOutputTokens = 8 });
        var remote = (await f.Chat("base+head").CompleteChatAsync([new UserChatMessage("the cat sat")], Greedy8)).Value;
        Assert.Equal(remote.Content[0].Text, local.Text);
        Assert.Equal(8, local.Usage!.OutputTokenCount);
        var streamed = new StringBuilder();
        await foreach (var u in client.GetStreamingResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "the cat sat")], new Microsoft.Extensions.AI.ChatOptions { MaxOutputTokens = 8 })) streamed.Append(u.Text);
        Assert.Equal(local.Text, streamed.ToString());
    }
}
