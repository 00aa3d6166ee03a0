using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Server;
using Superficial.Serving;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// `superficial serve` under load: the 43.7M benchmark model (random, Llama 2 tokenizer) with and without a
/// superficial head, behind the HTTP server on loopback; 1, 4, 16 and 64 concurrent streaming clients, each
/// level bounded in requests and time. Throughput (completion tokens/s), time to first token and latency
/// (p50/p95), against offline batched generation (TextGenerator, batch 16) of the same prompts in the same run.
/// The load generator runs in the same process, on the same cores, as the server.
/// </summary>
internal static class ServeBench
{
    public static void Run(bool quick)
    {
        var peak = Measure.MatmulPeakGflops();
        var c = FoundationBench.Config40M();
        int maxNew = quick ? 16 : 32;
        Console.WriteLine($"\n== serve: random Llama, {c.ParameterCount() / 1e6:0.0}M parameters, F32, {maxNew} new tokens per request (greedy), batch slots 16");
        Console.WriteLine($"F32 matmul peak (2048^3, best of 5): {peak:0.0} GFLOP/s; {Environment.ProcessorCount} cores shared with other work on this machine (figures are noisy)");
        var dir = MethodBench.MakeModel(Path.Combine(Path.GetTempPath(), "superficial-bench-serve", "base"), 1);
        using var model = CausalLM.Load(dir);
        var tok = TextTokenizer.Load(dir);
        using var head = new SuperficialHead(randn(c.HiddenSize, c.HiddenSize, generator: new TorchSharp.torch.Generator(9)) * 0.02, c.VocabSize);
        var prompts = Enumerable.Range(0, 64).Select(i => $"Question {i}: how many apples are in {i + 3} baskets of seven? Answer:").ToArray();
        var options = new GenerationOptions { MaxNewTokens = maxNew, StopIds = [], BatchSize = 16 };
        var variants = new[] { new ServedVariant("base", model, tok), new ServedVariant("base+head", model, tok, new HeadTransform(head)) };

        var offline = new Dictionary<string, double>();
        foreach (var v in variants)
        {
            var ids = prompts.Select(p => (IReadOnlyList<int>)tok.Encode(p)).ToArray();
            var gen = new TextGenerator(model, tok);
            gen.GenerateAll(ids.Take(16).ToArray(), options with { MaxNewTokens = 4 }, v.Transform); // warm-up
            var w = Stopwatch.StartNew();
            var results = gen.GenerateAll(ids, options, v.Transform);
            offline[v.Name] = results.Sum(r => r.TokenIds.Count) / w.Elapsed.TotalSeconds;
            Console.WriteLine($"offline batched generation ({v.Name}): {results.Sum(r => r.TokenIds.Count)} tokens in {w.Elapsed.TotalSeconds:0.0} s = {offline[v.Name]:0.0} tokens/s");
        }

        using var engine = new ServingEngine(variants, new EngineLimits { MaxBatch = 16, MaxQueue = 256 });
        var server = OpenAiServer.StartAsync(engine, new ServerOptions { Port = 0, Log = _ => { } }).GetAwaiter().GetResult();
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };
        Console.WriteLine("variant    clients  requests  tokens/s  vs offline  TTFT p50  TTFT p95  latency p50  latency p95");
        var at16 = new Dictionary<string, double>();
        foreach (var v in variants)
            foreach (var clients in new[] { 1, 4, 16, 64 })
            {
                int requests = quick ? Math.Max(2, clients) : Math.Max(4, 2 * clients);
                var budget = TimeSpan.FromSeconds(quick ? 30 : 90);
                Load(http, v.Name, prompts, maxNew, 2, Math.Min(clients, 4), TimeSpan.FromSeconds(30)); // warm-up
                var (tokens, secs, ttft, latency) = Load(http, v.Name, prompts, maxNew, requests, clients, budget);
                double tps = tokens / secs;
                if (clients == 16) at16[v.Name] = tps;
                Console.WriteLine($"{v.Name,-10} {clients,7} {ttft.Count,9} {tps,9:0.0} {tps / offline[v.Name],11:P0} {P(ttft, 50),8:0.00}s {P(ttft, 95),8:0.00}s {P(latency, 50),11:0.00}s {P(latency, 95),11:0.00}s");
            }
        Console.WriteLine($"head's cost: offline {offline["base+head"] / offline["base"]:P0} of base throughput; served at 16 clients {at16["base+head"] / at16["base"]:P0}");
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    static double P(List<double> xs, int p)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.OrderBy(x => x).ToList();
        return s[Math.Min(s.Count - 1, (int)Math.Ceiling(p / 100.0 * s.Count) - 1)];
    }

    /// <summary><paramref name="clients"/> concurrent clients send streaming completions until <paramref name="requests"/> are done or the time is up.</summary>
    static (long tokens, double secs, List<double> ttft, List<double> latency) Load(HttpClient http, string model, string[] prompts, int maxNew,
        int requests, int clients, TimeSpan budget)
    {
        int next = -1;
        long tokens = 0;
        var ttft = new List<double>();
        var latency = new List<double>();
        var w = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests && w.Elapsed < budget)
            {
                var body = new JsonObject
                {
                    ["model"] = model, ["prompt"] = prompts[i % prompts.Length], ["max_tokens"] = maxNew, ["temperature"] = 0,
                    ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true },
                }.ToJsonString();
                var start = Stopwatch.GetTimestamp();
                using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
                resp.EnsureSuccessStatusCode();
                using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
                double? first = null;
                int used = 0;
                string? line;
                while ((line = await reader.ReadLineAsync()) is not null)
                {
                    if (!line.StartsWith("data: ") || line == "data: [DONE]") continue;
                    var chunk = JsonNode.Parse(line[6..])!;
                    if (chunk["usage"] is JsonObject u) used = (int)u["completion_tokens"]!;
                    else first ??= Stopwatch.GetElapsedTime(start).TotalSeconds;
                }
                double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
                lock (ttft) { ttft.Add(first ?? total); latency.Add(total); tokens += used; }
            }
        })).ToArray();
        Task.WaitAll(workers);
        return (tokens, w.Elapsed.TotalSeconds, ttft, latency);
    }
}
