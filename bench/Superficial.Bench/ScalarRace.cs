using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// Whether this TorchSharp keeps a temporary Scalar alive through its native call (see Superficial.Tensors.Scalars):
/// one thread adds a scalar to a tensor with TorchSharp's operator and checks the result, another only allocates
/// managed garbage (so garbage collections happen while the first is inside libtorch), for the given seconds; then the
/// same without the allocating thread. With TorchSharp 0.107 the first run fails within a second ("Expected false to be
/// true ... toFloat", a freed Scalar read by libtorch) and the second passes. Then our own decoding (the bench's 43.7M
/// Llama with a superficial head, greedy and sampled, 4 prompts x 24 tokens) beside the allocating thread: every run
/// must give the first run's tokens. Before stop 27 it failed the same way within 20 s; it now passes. Exit 1 if our
/// decoding failed (the first line only reports on TorchSharp).
///   dotnet run -c Release --project bench/Superficial.Bench -- scalar-race [--seconds 20]
/// </summary>
internal static class ScalarRace
{
    public static int Run(string[] args)
    {
        int at = Array.IndexOf(args, "--seconds");
        int seconds = at >= 0 ? int.Parse(args[at + 1]) : 20;
        foreach (bool allocate in new[] { true, false })
        {
            var (ops, wrong, error) = Race(seconds, allocate, TorchSharpAdd());
            Console.WriteLine($"TorchSharp's x + 1.5, {(allocate ? "beside a thread that allocates" : "alone (the other thread spins)"),-32} " +
                              $"{ops,10} additions, {wrong} wrong results, {(error is null ? "no error" : "failed: " + error.Split('\n')[0])}");
        }
        bool failed = false;
        set_num_threads(1);
        using var model = CausalLM.Create(FoundationBench.Config40M(), seed: 1);
        using var head = new SuperficialHead(randn(512, 512, generator: new Generator(5)) * 0.05f, model.VocabSize);
        foreach (double temperature in new[] { 0.0, 0.8 })
        {
            var (runs, wrong, error) = Race(seconds, allocate: true, Decoding(model, head, temperature));
            failed |= error is not null || wrong > 0;
            Console.WriteLine($"our decoding with a head, {(temperature == 0 ? "greedy" : "sampled")}, beside a thread that allocates: " +
                              $"{runs} runs, {wrong} with other tokens, {(error is null ? "no error" : "failed: " + error.Split('\n')[0])}");
        }
        return failed ? 1 : 0;
    }

    /// <summary>One check of TorchSharp's operator with a temporary Scalar: whether it was right.</summary>
    static Func<bool> TorchSharpAdd()
    {
        var x = zeros(4);
        return () =>
        {
            using var y = x.add(1.5);
            return y[0].item<float>() == 1.5f;
        };
    }

    /// <summary>One run of TextGenerator with a head: whether it gave the first run's tokens.</summary>
    static Func<bool> Decoding(CausalLM model, SuperficialHead head, double temperature)
    {
        var gen = new TextGenerator(model, null);
        var prompts = Enumerable.Range(0, 4).Select(p => (IReadOnlyList<int>)Enumerable.Range(0, 20 + p).Select(i => 3 + (i * 7919 + p * 31) % 31000).ToList()).ToArray();
        var o = new GenerationOptions { MaxNewTokens = 24, BatchSize = 4, StopIds = [], Temperature = temperature, TopP = temperature > 0 ? 0.9 : 1.0, Seed = 3 };
        string Tokens() => string.Join("|", gen.Generate(prompts, o, new HeadTransform(head, 0.7)).Select(r => string.Join(",", r.TokenIds)));
        var reference = Tokens();
        return () => Tokens() == reference;
    }

    static (long ops, long wrong, string? error) Race(int seconds, bool allocate, Func<bool> check)
    {
        long ops = 0, wrong = 0;
        string? error = null;
        var stop = DateTime.UtcNow.AddSeconds(seconds);
        var other = new Thread(() =>
        {
            var r = new Random(1);
            object? keep = null;
            while (DateTime.UtcNow < stop && error is null)
                if (allocate) keep = new byte[r.Next(100, 20000)];
                else Thread.SpinWait(1000);
            GC.KeepAlive(keep);
        });
        other.Start();
        try
        {
            while (DateTime.UtcNow < stop)
            {
                if (!check()) wrong++;
                ops++;
            }
        }
        catch (Exception e) { error = e.Message; }
        other.Join();
        return (ops, wrong, error);
    }
}
