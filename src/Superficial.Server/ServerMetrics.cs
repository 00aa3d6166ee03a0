using Prometheus;
using Superficial.Serving;

namespace Superficial.Server;

/// <summary>The server's Prometheus metrics, in a registry of its own (several servers may share a process, as in the tests).</summary>
internal sealed class ServerMetrics
{
    public readonly CollectorRegistry Registry = Metrics.NewCustomRegistry();
    public readonly Counter Requests, PromptTokens, CompletionTokens;
    public readonly Histogram TimeToFirstToken, Latency;

    public ServerMetrics(ServingEngine engine)
    {
        var f = Metrics.WithCustomRegistry(Registry);
        Requests = f.CreateCounter("superficial_requests_total", "HTTP requests by endpoint, model and status code.",
            new CounterConfiguration { LabelNames = ["endpoint", "model", "status"] });
        PromptTokens = f.CreateCounter("superficial_prompt_tokens_total", "Prompt tokens of finished requests.", new CounterConfiguration { LabelNames = ["model"] });
        CompletionTokens = f.CreateCounter("superficial_completion_tokens_total", "Generated tokens of finished requests.", new CounterConfiguration { LabelNames = ["model"] });
        double[] buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
        TimeToFirstToken = f.CreateHistogram("superficial_time_to_first_token_seconds", "From the request's arrival to its first generated token.",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = buckets });
        Latency = f.CreateHistogram("superficial_request_duration_seconds", "From the request's arrival to its last byte (generation requests).",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = buckets });
        var queue = f.CreateGauge("superficial_queue_depth", "Requests waiting for a slot in a batch.");
        var active = f.CreateGauge("superficial_active_sequences", "Sequences being generated now.");
        var speed = f.CreateGauge("superficial_tokens_per_second", "Generated tokens per second over the last 10 seconds.");
        var total = f.CreateGauge("superficial_generated_tokens", "Tokens generated since the server started (all requests, finished or not).");
        Registry.AddBeforeCollectCallback(() =>
        {
            queue.Set(engine.QueueDepth);
            active.Set(engine.ActiveSequences);
            speed.Set(engine.TokensPerSecond);
            total.Set(engine.TokensGenerated);
        });
    }
}
