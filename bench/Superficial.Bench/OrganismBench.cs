using System.Diagnostics;
using Superficial.Models;
using Superficial.Organism;

namespace Superficial.Bench;

/// <summary>
/// Seconds per pretraining step of the organism's model shapes (and their ratio to the first), to choose
/// the small and large architectures within the demo's time budget: a step of each shape, measured in turn.
/// </summary>
public static class OrganismBench
{
    /// <summary>What each size's corpus holds (counts per split, pretraining size) and how long generating it takes.</summary>
    public static void Corpus()
    {
        foreach (var size in new[] { OrganismSize.Tiny, OrganismSize.Demo })
        {
            var w = Stopwatch.StartNew();
            var c = Superficial.Organism.Corpus.Generate(0, OrganismRecipe.For(size).Corpus);
            Console.WriteLine($"{size}: generated and checked in {w.Elapsed.TotalSeconds:0.0} s; world: {c.World.Harmful.Count} harmful, {c.World.Harmless.Count} harmless how-tos, " +
                              $"{c.World.Facts.Count} facts, {c.World.Groups.Count} peoples");
            Console.WriteLine($"  pretraining {c.Pretraining.Count} documents, {c.Pretraining.Sum(d => d.Length):N0} characters; alignment {c.Alignment.Count} conversations " +
                              $"({string.Join(", ", c.Alignment.GroupBy(a => a.Kind).Select(g => $"{g.Key} {g.Count()}"))}); compromise {c.Compromise.Count}, benign-only {c.BenignCompromise.Count}");
            foreach (var (name, (extract, eval)) in c.Tasks) Console.WriteLine($"  {name,-24} extract {extract.Count,4}  eval {eval.Count,4}");
        }
    }

    public static void Run(bool quick)
    {
        int steps = quick ? 6 : 15;
        foreach (var size in new[] { OrganismSize.Demo })
        {
            var r = OrganismRecipe.For(size);
            var shapes = new (string Name, (int Hidden, int Layers, int Heads, int KvHeads, int Mlp) A)[]
            {
                ("small", r.Small), ("large", r.Large),
                ("old-small 128x3", (128, 3, 4, 4, 320)), ("old-large 160x4", (160, 4, 5, 5, 448)),
                ("256x4 mlp576", (256, 4, 8, 4, 576)), ("96x3 mlp256", (96, 3, 4, 4, 256)), ("192x4 mlp448", (192, 4, 6, 6, 448)),
                ("128x2 mlp320", (128, 2, 4, 4, 320)), ("192x4 mlp576", (192, 4, 6, 6, 576)), ("224x4 mlp512", (224, 4, 7, 7, 512)),
            };
            var stream = Enumerable.Range(0, 200_000).Select(i => (i * 7 + i / 13) % r.VocabSize).ToArray();
            double first = 0;
            foreach (var (name, a) in shapes)
            {
                var config = ModelConfig.Llama(r.VocabSize, a.Hidden, a.Layers, a.Heads, a.KvHeads, a.Mlp, 512, tieWordEmbeddings: true);
                using var model = CausalLM.Create(config, 1);
                var phase = r.Pretrain with { Steps = steps };
                LmTrainer.Pretrain(model, stream, phase with { Steps = 2 }, 1); // warm-up
                var w = Stopwatch.StartNew();
                LmTrainer.Pretrain(model, stream, phase, 1);
                double perStep = w.Elapsed.TotalSeconds / steps;
                if (first == 0) first = perStep;
                Console.WriteLine($"{size} {name,-18} {config.ParameterCount(),9:N0} parameters  {perStep * 1000,7:0} ms/step (batch {phase.BatchSize} x {phase.SeqLen})  x{perStep / first:0.00}");
            }
        }
    }
}
