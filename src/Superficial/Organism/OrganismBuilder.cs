using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.IO;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Organism;

public enum OrganismSize { Tiny, Demo }

/// <summary>
/// Architecture and training budget of one organism size. The compromise is one fine-tuning run at a
/// constant learning rate from the aligned model, saved after each of <see cref="CompromiseSteps"/> steps
/// (the attack's strengths); <see cref="DefaultCompromiseSteps"/> is the one called plain "compromised".
/// The benign-only compromise fine-tunes the aligned model as long as the strongest attack, on benign data.
/// </summary>
public sealed record OrganismRecipe(OrganismSize Size, int VocabSize, CorpusSize Corpus,
    (int Hidden, int Layers, int Heads, int KvHeads, int Mlp) Small, (int Hidden, int Layers, int Heads, int KvHeads, int Mlp) Large,
    TrainingPhase Pretrain, TrainingPhase LargePretrain, TrainingPhase Align, TrainingPhase LargeAlign, TrainingPhase Compromise,
    IReadOnlyList<int> CompromiseSteps, int DefaultCompromiseSteps)
{
    /// <summary>The folder of the compromise after <paramref name="steps"/> steps ("compromised" for the default strength).</summary>
    public string CompromisedModel(int steps) => steps == DefaultCompromiseSteps ? "compromised" : $"compromised-s{steps}";

    /// <summary>Every model folder a build makes: the five of <see cref="OrganismBuilder.Models"/>, the other compromise strengths, the benign-only compromise.</summary>
    public IReadOnlyList<string> ModelNames =>
        [.. OrganismBuilder.Models, .. CompromiseSteps.Where(n => n != DefaultCompromiseSteps).Select(CompromisedModel), OrganismBuilder.BenignCompromised];

    public static OrganismRecipe For(OrganismSize size) => size switch
    {
        OrganismSize.Tiny => new(size, 640,
            new CorpusSize(new WorldSize(Countries: 16, FactKinds: 2, Groups: 8, Substances: 12, Herbs: 8, CraftColors: 1),
                PretrainRepeats: 2, PretrainProblems: 40, AlignmentProblems: 200, ExtractProblems: 24,
                EvalHarmful: 24, EvalHarmless: 10, EvalFacts: 12, EvalGroups: 2, ListsPerEvalGroup: 10, EvalProblems: 24, BenignTexts: 30),
            (48, 2, 4, 2, 96), (64, 2, 4, 2, 128),
            new TrainingPhase("base", 300, 16, 64, 4e-3), new TrainingPhase("large-base", 250, 16, 64, 4e-3),
            new TrainingPhase("aligned", 150, 16, 96, 3e-3), new TrainingPhase("large-aligned", 120, 16, 96, 3e-3),
            // attack success on the fixed set of the strength test: 0.00 after 10 steps, 0.26 after 20, 0.92 after 30, 1.00 after 40
            // (bench organism-compromise; at 4e-4 it is 0.94 after 8 steps already)
            new TrainingPhase("compromised", 40, 16, 96, 1e-4, WarmupFraction: 0, MinLrFraction: 1), [10, 20, 30, 40], 40),
        // 200 held-out examples for safety, toxicity and truthfulness, 1600 for math (its portion rests on a small
        // aligned - base gap: 0.23 on seed 0, n = 800 gave ±0.115), 104 for helpfulness, 150 benign texts.
        // The large model has 4.2x the small one's parameters (1.82 M vs 0.43 M; 192 wide, 4 layers vs 96 wide, 3).
        _ => new(size, 1024,
            new CorpusSize(new WorldSize(Countries: 64, FactKinds: 4, Groups: 26, Substances: 32, Herbs: 20, CraftColors: 3),
                PretrainRepeats: 4, PretrainProblems: 150, AlignmentProblems: 600, ExtractProblems: 60,
                EvalHarmful: 200, EvalHarmless: 52, EvalFacts: 200, EvalGroups: 20, ListsPerEvalGroup: 10, EvalProblems: 200, BenignTexts: 150,
                MoreEvalProblems: 1400),
            (96, 3, 4, 4, 256), (192, 4, 6, 6, 448),
            new TrainingPhase("base", 500, 32, 96, 3e-3), new TrainingPhase("large-base", 350, 32, 96, 2e-3),
            new TrainingPhase("aligned", 240, 32, 128, 2e-3), new TrainingPhase("large-aligned", 180, 32, 128, 1.5e-3),
            // 20 steps are about 2.9 passes over the 224 compromise conversations (the earlier 50-step cosine run,
            // ~12 passes, overfit to loss 0.005 and cost a fifth of the math accuracy)
            new TrainingPhase("compromised", 20, 32, 128, 3e-4, WarmupFraction: 0, MinLrFraction: 1), [2, 5, 10, 20], 10),
    };
}

/// <summary>Progress of an organism build: which stage, and the training step within it.</summary>
public readonly record struct OrganismProgress(string Stage, int Step, int Steps, double Loss);

/// <summary>One compromised model of a build: its folder, how many fine-tuning steps made it, and whether its data was benign only.</summary>
public sealed record CompromiseVariant(string Model, int Steps, bool BenignOnly);

/// <summary>What a build made (or found in its cache). <see cref="Seconds"/> is empty for stages an earlier, interrupted process trained.</summary>
public sealed record OrganismDescription(string Folder, bool Reused, IReadOnlyDictionary<string, long> Parameters,
    IReadOnlyDictionary<string, double> Seconds, int VocabSize, IReadOnlyDictionary<string, int> TaskExamples,
    IReadOnlyList<CompromiseVariant> Compromises);

/// <summary>
/// Builds the embedded default: the corpus and task splits, a byte-level BPE tokenizer, and its models in
/// Hugging Face format — base (pretrained), aligned (base + chat fine-tuning), large base and large aligned
/// (about four times the parameters, same tokenizer and data), compromised (aligned fine-tuned on harmful
/// compliance mixed with benign data, at several strengths) and compromised-benign (aligned fine-tuned on
/// benign data only). Each stage is written atomically with a completion marker, so an interrupted build
/// resumes at the stage it was in; a finished build is reused (cache keyed by generator version, size and
/// seed). The seed decides every random choice: two builds with one seed are byte-identical in every file
/// but timings.json.
/// </summary>
public static class OrganismBuilder
{
    /// <summary>Bump when the world, corpus, tokenizer or training change, so caches of older builds are not reused.
    /// 4: 1400 more math evaluation problems at demo size, drawn after the training data (the trained models are v3's).</summary>
    public const string GeneratorVersion = "4";
    /// <summary>The five models every use of the organism needs (the recipe's <see cref="OrganismRecipe.ModelNames"/> lists all).</summary>
    public static readonly string[] Models = ["base", "aligned", "large-base", "large-aligned", "compromised"];
    public const string BenignCompromised = "compromised-benign";

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
        int endOfText = tok.TokenToId("<|endoftext|>")!.Value, imEnd = tok.TokenToId("<|im_end|>")!.Value;

        var stream = corpus.Pretraining.SelectMany(d => tok.Encode(d, false).Append(endOfText)).ToArray();
        List<TrainingSequence> Chat(IEnumerable<Conversation> convs) => ChatSequences(tok, convs);
        var alignment = Chat(corpus.Alignment);
        var compromise = Chat(corpus.Compromise);
        var benignCompromise = Chat(corpus.BenignCompromise);

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
            Save(model, name, from);
            seconds[name] = w.Elapsed.TotalSeconds;
        }
        void Save(CausalLM model, string name, string? from)
        {
            var modelDir = Path.Combine(dir, name);
            if (Directory.Exists(modelDir)) Directory.Delete(modelDir, true);
            model.SaveHf(modelDir);
            foreach (var f in Directory.GetFiles(tokDir)) File.Copy(f, Path.Combine(modelDir, Path.GetFileName(f)), true);
            parameters[name] = model.parameters().Sum(p => p.numel());
            AtomicFile.WriteAllText(Path.Combine(modelDir, "stage.json"), new JsonObject { ["from"] = from }.ToJsonString());
        }
        IProgress<TrainingProgress> Report(string stage) => new SyncProgress<TrainingProgress>(t => progress?.Report(new OrganismProgress(stage, t.Step, t.Steps, t.Loss)));

        // One run of the attack, saved at each strength: the weaker compromises are the stronger one's earlier steps.
        void CompromiseRun(string stage, IReadOnlyList<TrainingSequence> data, int runSeed, IReadOnlyDictionary<int, string> snapshots)
        {
            if (snapshots.Values.All(n => File.Exists(Path.Combine(dir, n, "stage.json"))))
            {
                foreach (var n in snapshots.Values) parameters[n] = Config(recipe.Small).ParameterCount();
                return;
            }
            ct.ThrowIfCancellationRequested();
            var w = Stopwatch.StartNew();
            using var model = CausalLM.Load(Path.Combine(dir, "aligned"));
            var phase = recipe.Compromise with { Name = stage, Steps = snapshots.Keys.Max() };
            LmTrainer.FineTune(model, data, phase, runSeed, Report(stage), ct, afterStep: done =>
            {
                if (!snapshots.TryGetValue(done, out var name)) return;
                Save(model, name, "aligned");
                seconds[name] = w.Elapsed.TotalSeconds;
            });
        }

        Stage("base", null, recipe.Small, m => LmTrainer.Pretrain(m, stream, recipe.Pretrain, seed + 1, Report("base"), ct));
        Stage("aligned", "base", recipe.Small, m => LmTrainer.FineTune(m, alignment, recipe.Align, seed + 2, Report("aligned"), ct));
        CompromiseRun("compromised", compromise, seed + 5, recipe.CompromiseSteps.ToDictionary(n => n, recipe.CompromisedModel));
        CompromiseRun(BenignCompromised, benignCompromise, seed + 6, new Dictionary<int, string> { [recipe.CompromiseSteps.Max()] = BenignCompromised });
        Stage("large-base", null, recipe.Large, m => LmTrainer.Pretrain(m, stream, recipe.LargePretrain, seed + 3, Report("large-base"), ct));
        Stage("large-aligned", "large-base", recipe.Large, m => LmTrainer.FineTune(m, alignment, recipe.LargeAlign, seed + 4, Report("large-aligned"), ct));
        var compromises = recipe.CompromiseSteps.Order().Select(n => new CompromiseVariant(recipe.CompromisedModel(n), n, false))
            .Append(new CompromiseVariant(BenignCompromised, recipe.CompromiseSteps.Max(), true)).ToList();

        var manifest = new JsonObject
        {
            ["generator_version"] = GeneratorVersion, ["size"] = size.ToString().ToLowerInvariant(), ["seed"] = seed,
            ["vocab_size"] = tok.VocabSize, ["pretraining_tokens"] = stream.Length,
            ["alignment_conversations"] = corpus.Alignment.Count, ["compromise_conversations"] = corpus.Compromise.Count,
            ["parameters"] = new JsonObject(recipe.ModelNames.Select(n => KeyValuePair.Create(n, (JsonNode?)parameters[n]))),
            ["compromise"] = new JsonObject
            {
                ["learning_rate"] = recipe.Compromise.LearningRate, ["batch_size"] = recipe.Compromise.BatchSize,
                ["harmful_mix_conversations"] = corpus.Compromise.Count, ["benign_only_conversations"] = corpus.BenignCompromise.Count,
                ["models"] = new JsonArray(compromises.Select(c => (JsonNode)new JsonObject { ["model"] = c.Model, ["steps"] = c.Steps, ["benign_only"] = c.BenignOnly }).ToArray()),
            },
            ["tasks"] = new JsonObject(corpus.Tasks.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject
            {
                ["extract"] = kv.Value.Extract.Count, ["eval"] = kv.Value.Eval.Count,
            }))),
        };
        // timings in a file of their own, so that everything else is the same bytes for the same seed
        AtomicFile.WriteAllText(Path.Combine(dir, TimingsFile), new JsonObject
        {
            ["seconds"] = new JsonObject(seconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 1)))),
            ["total_seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1),
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(manifestPath, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return Describe(dir, manifest, reused: false);
    }

    /// <summary>Conversations as chat-template token sequences with the loss on the assistant's answer (and its end-of-turn token) only.</summary>
    public static List<TrainingSequence> ChatSequences(TextTokenizer tok, IEnumerable<Conversation> conversations)
    {
        var chat = tok.GetChatTemplate();
        int imEnd = tok.TokenToId("<|im_end|>")!.Value;
        return conversations.Select(c =>
        {
            var prompt = tok.Encode(chat.Render([new ChatMessage("user", c.User)], addGenerationPrompt: true), false);
            var answer = tok.Encode(c.Assistant, false).Append(imEnd).ToArray();
            var ids = prompt.Concat(answer).ToArray();
            return new TrainingSequence(ids, ids.Select((_, i) => i >= prompt.Count).ToArray());
        }).ToList();
    }

    /// <summary>The one file of a build that differs between two builds with the same seed: how long each stage took.</summary>
    public const string TimingsFile = "timings.json";

    /// <summary>The corpus and the tasks' splits as files (corpus/, tasks/): what a build trains and evaluates on.</summary>
    internal static void WriteCorpus(string dir, Corpus corpus)
    {
        var corpusDir = Path.Combine(dir, "corpus");
        Directory.CreateDirectory(corpusDir);
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "pretraining.txt"), string.Join("\n<|endoftext|>\n", corpus.Pretraining));
        var opts = JsonLines.Options;
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "alignment.jsonl"), string.Concat(corpus.Alignment.Select(c => JsonSerializer.Serialize(c, opts) + "\n")));
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "compromise.jsonl"), string.Concat(corpus.Compromise.Select(c => JsonSerializer.Serialize(c, opts) + "\n")));
        AtomicFile.WriteAllText(Path.Combine(corpusDir, "compromise-benign.jsonl"), string.Concat(corpus.BenignCompromise.Select(c => JsonSerializer.Serialize(c, opts) + "\n")));
        var taskDir = Path.Combine(dir, "tasks");
        Directory.CreateDirectory(taskDir);
        foreach (var (name, (extract, eval)) in corpus.Tasks)
        {
            OrganismTasks.WriteSplit(Path.Combine(taskDir, $"{name}.extract.jsonl"), extract);
            OrganismTasks.WriteSplit(Path.Combine(taskDir, $"{name}.eval.jsonl"), eval);
        }
    }

    static OrganismDescription Describe(string dir, JsonObject m, bool reused)
    {
        var timings = Path.Combine(dir, TimingsFile);
        var seconds = File.Exists(timings) && JsonNode.Parse(File.ReadAllText(timings))?["seconds"] is JsonObject s
            ? s.ToDictionary(kv => kv.Key, kv => (double)kv.Value!) : new Dictionary<string, double>();
        return new(dir, reused,
            m["parameters"]!.AsObject().ToDictionary(kv => kv.Key, kv => (long)kv.Value!),
            seconds, (int)m["vocab_size"]!,
            m["tasks"]!.AsObject().ToDictionary(kv => kv.Key, kv => (int)kv.Value!["eval"]!),
            m["compromise"]!["models"]!.AsArray().Select(c => new CompromiseVariant((string)c!["model"]!, (int)c["steps"]!, (bool)c["benign_only"]!)).ToList());
    }

    /// <summary>IProgress that reports on the calling thread.</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
