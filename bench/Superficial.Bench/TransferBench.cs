using System.Diagnostics;
using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// The cost of offsite alignment: greedy decoding tokens/s of a large model alone (40M, hidden 512) against
/// the same model steered by a small model (hidden 256, 4 layers) and its head running beside it in lockstep.
/// </summary>
internal static class TransferBench
{
    public static void Run(bool quick)
    {
        Console.WriteLine("\n== transfer: large model alone vs large + small model with head (greedy, KV caches)");
        var largeConfig = FoundationBench.Config40M();
        var smallConfig = ModelConfig.Llama(32000, 256, 4, 4, 4, 768, 2048);
        using var large = CausalLM.Create(largeConfig, 1);
        using var small = CausalLM.Create(smallConfig, 2);
        using var head = new SuperficialHead(randn(256, 256) * 0.01, 32000);
        Console.WriteLine($"large {largeConfig.ParameterCount() / 1e6:0.0}M parameters, small {smallConfig.ParameterCount() / 1e6:0.0}M");
        int steps = quick ? 16 : 48;
        foreach (var batch in new[] { 1, 8 })
        {
            var prompts = Enumerable.Range(0, batch).Select(i => Enumerable.Range(0, 64).Select(j => (i * 97 + j * 13) % 32000).ToArray()).ToArray();
            var options = new GenerationOptions { MaxNewTokens = steps, StopIds = [], BatchSize = batch };
            double Tps(ILogitTransform? t)
            {
                var g = new TextGenerator(large, null);
                g.Generate(prompts, options with { MaxNewTokens = 4 }, t); // warm-up
                var w = Stopwatch.StartNew();
                var r = g.Generate(prompts, options, t);
                return r.Sum(x => x.TokenIds.Count) / w.Elapsed.TotalSeconds;
            }
            double alone = Tps(null), steered = Tps(new SideModelOffset(small, head));
            Console.WriteLine($"batch {batch}, context 64 + {steps} new: large alone {alone:0.0} tokens/s, large + small {steered:0.0} tokens/s " +
                              $"({steered / alone:P0} of the speed; the small model's share of FLOPs is {smallConfig.ParameterCount() / (double)(largeConfig.ParameterCount() + smallConfig.ParameterCount()):P0})");
        }
    }
}
