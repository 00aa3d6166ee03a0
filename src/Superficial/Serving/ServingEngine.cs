using System.Diagnostics;
using Superficial.Generation;
using static TorchSharp.torch;

namespace Superficial.Serving;

/// <summary>Limits a serving engine enforces.</summary>
public sealed record EngineLimits
{
    /// <summary>Sequences that decode together, per variant (the batch's slots).</summary>
    public int MaxBatch { get; init; } = 16;
    /// <summary>Requests that may wait for a slot, over all variants; more are refused (<see cref="QueueFullException"/>).</summary>
    public int MaxQueue { get; init; } = 64;
    public int MaxPromptTokens { get; init; } = 2048;
    public int MaxNewTokens { get; init; } = 1024;
}

/// <summary>
/// Continuous-batching generation for one or more variants, on one thread of its own (libtorch is driven from
/// one thread, as everywhere in this project). Requests wait in a bounded queue; between decoding steps each
/// variant's batch takes waiting requests into its free slots (<see cref="ContinuousBatch"/>), and variants with
/// work take turns, a step each. Greedy results equal <see cref="Generation.TextGenerator"/>'s for the same
/// prompt and options, whatever else shares the batch.
/// </summary>
public sealed class ServingEngine : IDisposable
{
    readonly Dictionary<string, ContinuousBatch> batches;
    readonly Dictionary<string, Queue<ContinuousBatch.Sequence>> waiting;
    readonly object gate = new();
    readonly SemaphoreSlim wake = new(0);
    readonly Thread thread;
    readonly TaskCompletionSource drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly int threads = get_num_threads();
    readonly Queue<(long ticks, int tokens)> recent = new();
    bool accepting = true, stopping;
    int queued, active;
    long tokensTotal;

    public ServingEngine(IReadOnlyList<ServedVariant> variants, EngineLimits? limits = null)
    {
        if (variants.Count == 0) throw new ArgumentException("give at least one variant to serve.");
        var dup = variants.GroupBy(v => v.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"two variants are named \"{dup.Key}\"; names must differ.");
        Limits = limits ?? new EngineLimits();
        if (Limits.MaxBatch < 1 || Limits.MaxQueue < 0) throw new ArgumentException("the batch needs at least one slot and the queue cannot be negative.");
        foreach (var v in variants) v.Transform?.CheckCompatible(v.Model);
        Variants = variants;
        batches = variants.ToDictionary(v => v.Name, v => new ContinuousBatch(v));
        waiting = variants.ToDictionary(v => v.Name, _ => new Queue<ContinuousBatch.Sequence>());
        thread = new Thread(Loop) { IsBackground = true, Name = "superficial-engine" };
        thread.Start();
    }

    public EngineLimits Limits { get; }
    public IReadOnlyList<ServedVariant> Variants { get; }
    public ServedVariant? Find(string name) => batches.TryGetValue(name, out var b) ? b.Variant : null;

    /// <summary>Requests waiting for a slot.</summary>
    public int QueueDepth { get { lock (gate) return queued; } }
    /// <summary>Sequences decoding now.</summary>
    public int ActiveSequences { get { lock (gate) return active; } }
    /// <summary>Tokens generated since start.</summary>
    public long TokensGenerated => Interlocked.Read(ref tokensTotal);
    public bool Accepting { get { lock (gate) return accepting; } }

    /// <summary>Generated tokens per second over the last 10 seconds.</summary>
    public double TokensPerSecond
    {
        get
        {
            lock (recent)
            {
                Trim(Stopwatch.GetTimestamp());
                return recent.Sum(r => r.tokens) / 10.0;
            }
        }
    }

    /// <summary>Queues a request. Throws <see cref="RequestRejectedException"/> (limits, unknown variant), <see cref="QueueFullException"/> or <see cref="EngineClosedException"/>.</summary>
    public GenerationStream Submit(EngineRequest request, CancellationToken ct = default)
    {
        if (!batches.TryGetValue(request.Variant, out var batch))
            throw new RequestRejectedException($"the model \"{request.Variant}\" does not exist; this server offers {string.Join(", ", batches.Keys)}.", "model");
        var o = request.Options;
        int n = request.Prompt.Ids.Count;
        if (n == 0) throw new RequestRejectedException("the prompt has no tokens.", "prompt");
        if (n > Limits.MaxPromptTokens)
            throw new RequestRejectedException($"the prompt has {n} tokens; this server accepts at most {Limits.MaxPromptTokens}.", "messages");
        if (o.MaxNewTokens < 1 || o.MaxNewTokens > Limits.MaxNewTokens)
            throw new RequestRejectedException($"max_tokens is {o.MaxNewTokens}; it must be between 1 and {Limits.MaxNewTokens}.", "max_tokens");
        int context = PromptLength.ContextOf(batch.Variant.Model.Config);
        if (n + o.MaxNewTokens > context)
            throw new RequestRejectedException($"the prompt ({n} tokens) plus max_tokens ({o.MaxNewTokens}) exceed the model's {context} positions.", "max_tokens");
        if (o.Temperature < 0 || double.IsNaN(o.Temperature)) throw new RequestRejectedException("temperature must be 0 or more.", "temperature");
        if (!(o.TopP > 0 && o.TopP <= 1)) throw new RequestRejectedException("top_p must be in (0, 1].", "top_p");
        if (request.Alpha is double a && a != batch.Variant.Alpha)
        {
            if (batch.Variant.Transform is null || batch.Variant.Alpha == 0)
                throw new RequestRejectedException($"the model \"{request.Variant}\" has no superficial head whose alpha could be set.", "superficial.alpha");
            if (double.IsNaN(a) || double.IsInfinity(a)) throw new RequestRejectedException("alpha must be a finite number.", "superficial.alpha");
        }
        var stream = new GenerationStream(request, n);
        var seq = batch.NewSequence(stream, ct);
        lock (gate)
        {
            if (!accepting) throw new EngineClosedException();
            if (queued >= Limits.MaxQueue) { seq.Sampler?.Dispose(); throw new QueueFullException(Limits.MaxQueue, 1); }
            waiting[request.Variant].Enqueue(seq);
            queued++;
        }
        if (ct.CanBeCanceled) ct.Register(() => wake.Release());
        wake.Release();
        return stream;
    }

    /// <summary>Stops accepting requests; completes when every queued and running request has finished.</summary>
    public Task DrainAsync()
    {
        lock (gate) accepting = false;
        wake.Release();
        return drained.Task;
    }

    void Loop()
    {
        set_num_threads(threads); // as many libtorch threads as the thread that built the engine uses
        while (true)
        {
            bool idle;
            lock (gate)
            {
                idle = active == 0 && queued == 0;
                if (idle && !accepting) drained.TrySetResult();
                if (stopping) break;
            }
            if (idle) { wake.Wait(); continue; }
            foreach (var batch in batches.Values) Run(batch);
        }
    }

    void Run(ContinuousBatch batch)
    {
        var joining = new List<ContinuousBatch.Sequence>();
        try
        {
            int cancelled = batch.RemoveCancelled();
            lock (gate)
            {
                var q = waiting[batch.Variant.Name];
                while (q.Count > 0 && batch.Count + joining.Count < Limits.MaxBatch)
                {
                    var s = q.Dequeue();
                    queued--;
                    if (s.Ct.IsCancellationRequested) ContinuousBatch.Cancel(s);
                    else joining.Add(s);
                }
            }
            if (cancelled == 0 && joining.Count == 0 && batch.Count == 0) return;
            long t0 = Stopwatch.GetTimestamp();
            batch.Join(joining);
            int tokens = joining.Count + batch.Step();
            Count(tokens);
            lock (gate) active = batches.Values.Sum(b => b.Count);
        }
        catch (Exception e)
        {
            foreach (var s in joining) { s.Stream.done.TrySetException(e); s.Stream.channel.Writer.TryComplete(e); }
            batch.FailAll(e);
            lock (gate) active = batches.Values.Sum(b => b.Count);
        }
    }

    void Count(int tokens)
    {
        Interlocked.Add(ref tokensTotal, tokens);
        long now = Stopwatch.GetTimestamp();
        lock (recent)
        {
            recent.Enqueue((now, tokens));
            Trim(now);
        }
    }

    void Trim(long now)
    {
        while (recent.Count > 0 && Stopwatch.GetElapsedTime(recent.Peek().ticks, now).TotalSeconds > 10) recent.Dequeue();
    }

    /// <summary>Stops the engine thread; requests still queued or running are cancelled.</summary>
    public void Dispose()
    {
        lock (gate) { stopping = true; accepting = false; }
        wake.Release();
        thread.Join();
        lock (gate)
        {
            foreach (var q in waiting.Values) while (q.Count > 0) ContinuousBatch.Cancel(q.Dequeue());
            queued = 0;
        }
        foreach (var b in batches.Values) b.Dispose();
        drained.TrySetResult();
        wake.Dispose();
    }
}
