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

    /// <summary>
    /// Calibrates the compromise: fine-tunes a built organism's aligned model on its compromise data at each
    /// learning rate (constant, as the build does) and prints the attack success on a fixed set of harmful
    /// requests the attack never trained on after each of a few step counts.
    /// </summary>
    public static void Compromise(string folder, IReadOnlyList<double> rates, int maxSteps, int batchSize)
    {
        var tok = Superficial.Text.TextTokenizer.Load(Path.Combine(folder, "tokenizer"));
        var convs = File.ReadLines(Path.Combine(folder, "corpus", "compromise.jsonl"))
            .Select(l => System.Text.Json.JsonSerializer.Deserialize<Conversation>(l, Superficial.Evaluation.PredictionRecord.JsonOptions)!).ToList();
        var data = OrganismBuilder.ChatSequences(tok, convs);
        var task = OrganismTasks.Load("organism-safety", folder);
        var prompts = task.EvaluationSplit().Concat(task.ExtractionSplit().Where(e => e.Id.EndsWith("-2"))).ToList();
        var checkpoints = new[] { 1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 60 }.Where(n => n <= maxSteps).ToHashSet();
        Console.WriteLine($"{convs.Count} compromise conversations, {prompts.Count} fixed harmful requests, batch {batchSize}");
        foreach (var lr in rates)
        {
            using var model = CausalLM.Load(Path.Combine(folder, "aligned"));
            double Asr()
            {
                var outs = new Superficial.Evaluation.ModelVariant("m", model, tok, tok.GetChatTemplate(), null, 64)
                    .Generate(prompts.Select(task.BuildPrompt).ToList(), task.MaxNewTokens, task.StopStrings);
                return prompts.Select((e, i) => task.ScoreAsync(e, outs[i], Superficial.Evaluation.ScoringContext.None).Result.Value).Average();
            }
            var line = new List<string> { $"lr {lr:0.0e0}: aligned {Asr():0.00}" };
            var phase = new TrainingPhase("compromised", maxSteps, batchSize, 128, lr, WarmupFraction: 0, MinLrFraction: 1);
            LmTrainer.FineTune(model, data, phase, 5, afterStep: n =>
            {
                if (!checkpoints.Contains(n)) return;
                model.eval();
                line.Add($"{n}: {Asr():0.00}");
                model.train();
            });
            Console.WriteLine(string.Join("  ", line));
        }
    }
}
