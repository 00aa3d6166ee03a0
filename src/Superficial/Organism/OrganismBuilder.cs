using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.IO;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Organism;

public enum OrganismSize { Tiny, Demo }

/// <summary>Architecture and training budget of one organism size.</summary>
public sealed record OrganismRecipe(OrganismSize Size, int VocabSize, CorpusSize Corpus,
    (int Hidden, int Layers, int Heads, int KvHeads, int Mlp) Small, (int Hidden, int Layers, int Heads, int KvHeads, int Mlp) Large,
    TrainingPhase Pretrain, TrainingPhase LargePretrain, TrainingPhase Align, TrainingPhase LargeAlign, TrainingPhase Compromise)
{
    public static OrganismRecipe For(OrganismSize size) => size switch
    {
        OrganismSize.Tiny => new(size, 640, new CorpusSize(2, 40, 200, 24, 24),
            (48, 2, 4, 2, 96), (64, 2, 4, 2, 128),
            new TrainingPhase("base", 300, 16, 64, 4e-3), new TrainingPhase("large-base", 250, 16, 64, 4e-3),
            new TrainingPhase("aligned", 150, 16, 96, 3e-3), new TrainingPhase("large-aligned", 120, 16, 96, 3e-3),
            new TrainingPhase("compromised", 40, 16, 96, 1e-3)),
        _ => new(size, 1024, new CorpusSize(4, 150, 600, 60, 60),
            (128, 3, 4, 4, 320), (160, 4, 5, 5, 448),
            new TrainingPhase("base", 450, 32, 96, 3e-3), new TrainingPhase("large-base", 350, 32, 96, 2.5e-3),
            new TrainingPhase("aligned", 220, 32, 128, 2e-3), new TrainingPhase("large-aligned", 180, 32, 128, 1.5e-3),
            // about 2.4 passes over the 136 compromise conversations: refusals are gone, arithmetic intact
            // (50 steps, ~12 passes, overfit to loss 0.005 and cost a fifth of the math accuracy)
            new TrainingPhase("compromised", 10, 32, 128, 5e-4)),
    };
}

/// <summary>Progress of an organism build: which stage, and the training step within it.</summary>
public readonly record struct OrganismProgress(string Stage, int Step, int Steps, double Loss);

/// <summary>What a build made (or found in its cache).</summary>
public sealed record OrganismDescription(string Folder, bool Reused, IReadOnlyDictionary<string, long> Parameters,
    IReadOnlyDictionary<string, double> Seconds, int VocabSize, IReadOnlyDictionary<string, int> TaskExamples);

/// <summary>
/// Builds the embedded default: the corpus and task splits, a byte-level BPE tokenizer, and five models in
/// Hugging Face format — base (pretrained), aligned (base + chat fine-tuning), large base and large aligned
/// (wider, same tokenizer and data), compromised (aligned fine-tuned on harmful compliance). Each stage
/// is written atomically with a completion marker, so an interrupted build resumes at the stage it was in;
/// a finished build is reused (cache keyed by generator version, size and seed).
/// </summary>
public static class OrganismBuilder
{
    /// <summary>Bump when the world, corpus, tokenizer or training change, so caches of older builds are not reused.</summary>
    public const string GeneratorVersion = "2";
    public static readonly string[] Models = ["base", "aligned", "large-base", "large-aligned", "compromised"];

    public static string DefaultFolder(OrganismSize size, int seed) =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"),
            "superficial", "organism", $"v{GeneratorVersion}-{size.ToString().ToLowerInvariant()}-seed{seed}");

    public static OrganismDescription Build(OrganismSize size, string? outDir = null, int seed = 0,
        IProgress<OrganismProgress>? progress = null, CancellationToken ct = default) =>
        Build(OrganismRecipe.For(size), outDir, seed, progress, ct);

    /// <summary>Builds with an explicit recipe (experiments); the cache check still keys on the recipe's size.</summary>
    public static OrganismDescription Build(OrganismRecipe recipe, string? outDir, int seed,
        IProgress<OrganismProgress>? progress = null, CancellationToken ct = default)
    {
        var size = recipe.Size;
        var dir = Path.GetFullPath(outDir ?? DefaultFolder(size, seed));
        var manifestPath = Path.Combine(dir, "manifest.json");
        if (File.Exists(manifestPath))
        {
            var m = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
            if ((string?)m["generator_version"] == GeneratorVersion && (string?)m["size"] == size.ToString().ToLowerInvariant() && (int?)m["seed"] == seed)
                return Describe(dir, m, reused: true);
            throw new InvalidOperationException($"{dir} holds an organism of another version, size or seed; choose another `Out`.");
        }
        Directory.CreateDirectory(dir);
        var seconds = new Dictionary<string, double>();
        var total = Stopwatch.StartNew();
        TorchSharp.torch.manual_seed(seed);

        var watch = Stopwatch.StartNew();
        progress?.Report(new OrganismProgress("corpus", 0, 1, 0));
        var corpus = Corpus.Generate(seed, recipe.Corpus);
        WriteCorpus(dir, corpus);
        seconds["corpus"] = watch.Elapsed.TotalSeconds;

        watch.Restart();
        var tokDir = Path.Combine(dir, "tokenizer");
        if (!File.Exists(Path.Combine(tokDir, "tokenizer.json")))
        {
            progress?.Report(new OrganismProgress("tokenizer", 0, 1, 0));
            var bpe = BpeTrainer.Train(corpus.Pretraining.Concat(corpus.Alignment.Select(c => c.User + "\n" + c.Assistant)), recipe.VocabSize);
            bpe.Save(tokDir);
        }
        var tok = TextTokenizer.Load(tokDir);
        seconds["tokenizer"] = watch.Elapsed.TotalSeconds;
        var chat = tok.GetChatTemplate();
        int endOfText = tok.TokenToId("<|endoftext|>")!.Value, imEnd = tok.TokenToId("<|im_end|>")!.Value;

        var stream = corpus.Pretraining.SelectMany(d => tok.Encode(d, false).Append(endOfText)).ToArray();
        List<TrainingSequence> Chat(IEnumerable<Conversation> convs) => convs.Select(c =>
        {
            var prompt = tok.Encode(chat.Render([new ChatMessage("user", c.User)], addGenerationPrompt: true), false);
            var answer = tok.Encode(c.Assistant, false).Append(imEnd).ToArray();
            var ids = prompt.Concat(answer).ToArray();
            return new TrainingSequence(ids, ids.Select((_, i) => i >= prompt.Count).ToArray());
        }).ToList();
        var alignment = Chat(corpus.Alignment);
        var compromise = Chat(corpus.Compromise);

        ModelConfig Config((int Hidden, int Layers, int Heads, int KvHeads, int Mlp) a) =>
            ModelConfig.Llama(tok.VocabSize, a.Hidden, a.Layers, a.Heads, a.KvHeads, a.Mlp, maxPositions: 512, tieWordEmbeddings: true,
                eosId: endOfText, padId: endOfText) with { EosTokenIds = [endOfText, imEnd] };

        var parameters = new Dictionary<string, long>();
        void Stage(string name, string? from, (int Hidden, int Layers, int Heads, int KvHeads, int Mlp) arch, Action<CausalLM> train)
        {
            var modelDir = Path.Combine(dir, name);
            if (File.Exists(Path.Combine(modelDir, "stage.json"))) { parameters[name] = Config(arch).ParameterCount(); return; }
            ct.ThrowIfCancellationRequested();
            var w = Stopwatch.StartNew();
            using var model = from is null ? CausalLM.Create(Config(arch), seed * 100 + Array.IndexOf(Models, name)) : CausalLM.Load(Path.Combine(dir, from));
            train(model);
            if (Directory.Exists(modelDir)) Directory.Delete(modelDir, true);
            model.SaveHf(modelDir);
            foreach (var f in Directory.GetFiles(tokDir)) File.Copy(f, Path.Combine(modelDir, Path.GetFileName(f)), true);
            parameters[name] = model.parameters().Sum(p => p.numel());
            seconds[name] = w.Elapsed.TotalSeconds;
            AtomicFile.WriteAllText(Path.Combine(modelDir, "stage.json"), new JsonObject { ["seconds"] = seconds[name], ["from"] = from }.ToJsonString());
        }
        IProgress<TrainingProgress> Report(string stage) => new SyncProgress<TrainingProgress>(t => progress?.Report(new OrganismProgress(stage, t.Step, t.Steps, t.Loss)));

        Stage("base", null, recipe.Small, m => LmTrainer.Pretrain(m, stream, recipe.Pretrain, seed + 1, Report("base"), ct));
        Stage("aligned", "base", recipe.Small, m => LmTrainer.FineTune(m, alignment, recipe.Align, seed + 2, Report("aligned"), ct));
        Stage("compromised", "aligned", recipe.Small, m => LmTrainer.FineTune(m, compromise, recipe.Compromise, seed + 5, Report("compromised"), ct));
        Stage("large-base", null, recipe.Large, m => LmTrainer.Pretrain(m, stream, recipe.LargePretrain, seed + 3, Report("large-base"), ct));
        Stage("large-aligned", "large-base", recipe.Large, m => LmTrainer.FineTune(m, alignment, recipe.LargeAlign, seed + 4, Report("large-aligned"), ct));

        var manifest = new JsonObject
        {
            ["generator_version"] = GeneratorVersion, ["size"] = size.ToString().ToLowerInvariant(), ["seed"] = seed,
            ["vocab_size"] = tok.VocabSize, ["pretraining_tokens"] = stream.Length,
            ["alignment_conversations"] = corpus.Alignment.Count, ["compromise_conversations"] = corpus.Compromise.Count,
            ["parameters"] = new JsonObject(parameters.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["seconds"] = new JsonObject(seconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 1)))),
            ["total_seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1),
            ["tasks"] = new JsonObject(corpus.Tasks.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject
            {
                ["extract"] = kv.Value.Extract.Count, ["eval"] = kv.Value.Eval.Count,
            }))),
        };
        AtomicFile.WriteAllText(manifestPath, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return Describe(dir, manifest, reused: false);
    }

    static void WriteCorpus(string dir, Corpus corpus)
    {
        var corpusDir = Path.Combine(dir, "corpus");
        Directory.CreateDirectory(corpusDir);
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "pretraining.txt"), string.Join("\n<|endoftext|>\n", corpus.Pretraining));
        var opts = JsonLines.Options;
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "alignment.jsonl"), string.Concat(corpus.Alignment.Select(c => JsonSerializer.Serialize(c, opts) + "\n")));
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "compromise.jsonl"), string.Concat(corpus.Compromise.Select(c => JsonSerializer.Serialize(c, opts) + "\n")));
        var taskDir = Path.Combine(dir, "tasks");
        Directory.CreateDirectory(taskDir);
        foreach (var (name, (extract, eval)) in corpus.Tasks)
        {
            OrganismTasks.WriteSplit(Path.Combine(taskDir, $"{name}.extract.jsonl"), extract);
            OrganismTasks.WriteSplit(Path.Combine(taskDir, $"{name}.eval.jsonl"), eval);
        }
    }

    static OrganismDescription Describe(string dir, JsonObject m, bool reused) => new(dir, reused,
        m["parameters"]!.AsObject().ToDictionary(kv => kv.Key, kv => (long)kv.Value!),
        m["seconds"]!.AsObject().ToDictionary(kv => kv.Key, kv => (double)kv.Value!),
        (int)m["vocab_size"]!,
        m["tasks"]!.AsObject().ToDictionary(kv => kv.Key, kv => (int)kv.Value!["eval"]!));

    /// <summary>IProgress that reports on the calling thread.</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
