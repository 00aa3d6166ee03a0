using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Alignment;

/// <summary>Extraction on a tiny base/aligned pair: numerics, files, sharding, resumption, refusals.</summary>
public class ExtractionTests : IClassFixture<ExtractionTests.Pair>
{
    public sealed class Pair : IDisposable
    {
        public readonly TempDir Root = TestPaths.NewTempDir("pair");
        public string Base => Path.Combine(Root.Path, "base");
        public string Aligned => Path.Combine(Root.Path, "aligned");
        public string Other => Path.Combine(Root.Path, "other");
        public Pair()
        {
            TinyModels.WriteModel(Base, seed: 1);
            TinyModels.WriteModel(Aligned, seed: 2);
            TinyModels.WriteModel(Other, seed: 3);
        }
        public void Dispose() => Root.Dispose();
    }

    readonly Pair pair;
    public ExtractionTests(Pair pair) => this.pair = pair;

    static IReadOnlyList<ExtractionPrompt> Prompts(int n) => Enumerable.Range(0, n)
        .Select(i => new ExtractionPrompt($"p{i}", new PromptSpec($"Question {i}: the cat{new string('!', i % 3)}\nAnswer:", $"Question {i}: the cat"))).ToList();

    static ExtractionOptions Options(int chunk = 2) => new() { TopK = 8, MaxNewTokens = 6, BatchSize = 2, ChunkSize = chunk, HiddenF32 = true };

    [Fact]
    public void TeacherForcedHiddenEqualsStepByStepDecoding()
    {
        using var model = CausalLM.Load(pair.Base);
        var raw = new[] { new[] { 5, 6, 7, 8, 9 }, new[] { 40, 41 } };
        var gen = new[] { new[] { 11, 12, 13, 14 }, new[] { 50, 51, 52, 53, 54, 55 } };
        var forced = Extraction.TeacherForcedHidden(model, raw, gen);
        using var noGrad = no_grad();
        for (int j = 0; j < raw.Length; j++)
        {
            using var cache = model.NewCache(1, 16);
            var steps = new List<Tensor>();
            var h = model.Forward(tensor(raw[j].Select(x => (long)x).ToArray(), [1, raw[j].Length]), null, cache);
            steps.Add(h[0, -1]);
            for (int t = 0; t < gen[j].Length - 1; t++)
                steps.Add(model.Forward(tensor(new long[] { gen[j][t] }, [1, 1]), null, cache)[0, -1]);
            var stepped = stack(steps);
            Assert.Equal(gen[j].Length, (int)forced[j].shape[0]);
            var diff = (stepped - forced[j]).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"row {j}: teacher-forced vs stepped max diff {diff}");
        }
    }

    [Fact]
    public void ExtractionStoresAlignedTopKAndBaseHidden()
    {
        using var tmp = TestPaths.NewTempDir("ext");
        var prompts = Prompts(5);
        var summary = Extraction.Run(pair.Base, pair.Aligned, prompts, "test", tmp.Path, Options());
        Assert.Equal(3, summary.ChunksTotal);
        var data = ExtractionData.Open([tmp.Path]);
        Assert.Equal(summary.Positions, data.Positions);
        Assert.Equal(8, data.TopK);
        // every stored position: the aligned model's greedy token is the top-1 id, logits sorted descending
        using var st = SafeTensorsFile.Open(Extraction.ChunkPath(tmp.Path, 0, ".safetensors"));
        using var ids = st.Load("topk_ids", ScalarType.Int64);
        using var logits = st.Load("topk_logits");
        Assert.True((logits.narrow(1, 0, 7) >= logits.narrow(1, 1, 7)).all().item<bool>());
        var lines = File.ReadAllLines(Extraction.ChunkPath(tmp.Path, 0, ".jsonl"));
        Assert.Equal(2, lines.Length);
        int total = lines.Sum(l => (int)JsonNode.Parse(l)!["tokens"]!);
        Assert.Equal(total, (int)ids.shape[0]);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "manifest.json")))!;
        Assert.Equal(ModelIdentity.Of(pair.Base), (string)manifest["base"]!["identity"]!);
        Assert.Contains("<|im_start|>user", (string)JsonNode.Parse(lines[0])!["chat_prompt"]!);
    }

    [Fact]
    public void ShardSlicesPartitionThePromptsAndWorkersShareAFolder()
    {
        for (int n = 1; n <= 5; n++)
        {
            var owned = Enumerable.Range(0, n).SelectMany(k => Enumerable.Range(0, 23).Where(new ShardSpec(k, n).Owns)).OrderBy(x => x).ToList();
            Assert.Equal(Enumerable.Range(0, 23), owned);
        }
        Assert.Equal(new ShardSpec(2, 4), ShardSpec.Resolve(null, null, k => k switch { "SLURM_ARRAY_TASK_ID" => "3", "SLURM_ARRAY_TASK_MIN" => "1", "SLURM_ARRAY_TASK_COUNT" => "4", _ => null }));
        Assert.Equal(new ShardSpec(1, 3), ShardSpec.Resolve(null, 3, k => k == "JOB_COMPLETION_INDEX" ? "1" : null));
        Assert.Throws<ArgumentException>(() => ShardSpec.Resolve(null, null, k => k == "JOB_COMPLETION_INDEX" ? "1" : null));
        Assert.Throws<ArgumentException>(() => ShardSpec.Parse("4/4"));

        using var split = TestPaths.NewTempDir("split");
        using var whole = TestPaths.NewTempDir("whole");
        var prompts = Prompts(5);
        var parts = Enumerable.Range(0, 2).Select(k => Extraction.Run(pair.Base, pair.Aligned, prompts, "test", split.Path, Options() with { Shard = new ShardSpec(k, 2) })).ToList();
        Assert.Equal(3, parts.Sum(p => p.ChunksDone));
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", whole.Path, Options());
        foreach (var f in Directory.GetFiles(Path.Combine(whole.Path, "chunks")))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(split.Path, "chunks", Path.GetFileName(f))));
    }

    [Fact]
    public void KilledRunResumesToIdenticalFiles()
    {
        using var clean = TestPaths.NewTempDir("clean");
        using var killed = TestPaths.NewTempDir("killed");
        var prompts = Prompts(6);
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", clean.Path, Options());
        using var cts = new CancellationTokenSource();
        // cancel in the middle of the second chunk
        var progress = new SyncProgress<ExtractionProgress>(p => { if (p.ChunksDone == 1 && p.PromptsDone > 0 && p.PromptsDone < 2) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Extraction.Run(pair.Base, pair.Aligned, prompts, "test", killed.Path, Options() with { ChunkSize = 2, BatchSize = 1 }, progress, cts.Token));
        Assert.True(File.Exists(Extraction.ChunkPath(killed.Path, 0, ".safetensors")));
        Assert.False(File.Exists(Extraction.ChunkPath(killed.Path, 1, ".safetensors")));
        File.WriteAllText(Extraction.ChunkPath(killed.Path, 1, ".safetensors") + ".tmp-123-abc", "partial garbage");
        Assert.Throws<InvalidOperationException>(() =>
            Extraction.Run(pair.Base, pair.Aligned, prompts, "test", killed.Path, Options() with { TopK = 9 }));
        var resumed = Extraction.Run(pair.Base, pair.Aligned, prompts, "test", killed.Path, Options() with { ChunkSize = 2, BatchSize = 1 });
        Assert.Equal(1, resumed.ChunksSkipped);
        // BatchSize differs from the clean run only in how prompts are grouped; compare with a clean run of the same settings
        using var clean1 = TestPaths.NewTempDir("clean1");
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", clean1.Path, Options() with { ChunkSize = 2, BatchSize = 1 });
        foreach (var f in Directory.GetFiles(Path.Combine(clean1.Path, "chunks")))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(killed.Path, "chunks", Path.GetFileName(f))));
    }

    /// <summary>Every chunk's files of two extraction folders: the same prompts, tokens and texts; top-k and hidden states within float noise.</summary>
    static void AssertSameExtraction(string a, string b, int chunks)
    {
        for (int c = 0; c < chunks; c++)
        {
            Assert.Equal(File.ReadAllText(Extraction.ChunkPath(a, c, ".jsonl")), File.ReadAllText(Extraction.ChunkPath(b, c, ".jsonl")));
            using var fa = SafeTensorsFile.Open(Extraction.ChunkPath(a, c, ".safetensors"));
            using var fb = SafeTensorsFile.Open(Extraction.ChunkPath(b, c, ".safetensors"));
            foreach (var name in new[] { "topk_ids", "sequence", "position" })
                Assert.True(fa.Load(name).equal(fb.Load(name)).all().item<bool>(), $"chunk {c}: {name} differs");
            foreach (var name in new[] { "topk_logits", "hidden" })
            {
                var diff = (fa.Load(name, ScalarType.Float32) - fb.Load(name, ScalarType.Float32)).abs().max().item<float>();
                Assert.True(diff <= 1e-4, $"chunk {c}: {name} max diff {diff}");
            }
        }
    }

    [Fact]
    public void ContinuousBatchingEqualsOnePromptAtATime()
    {
        // stop strings end the answers at different lengths, so finished slots are refilled, across chunk boundaries too
        var prompts = Prompts(7);
        var o = Options(chunk: 3) with { MaxNewTokens = 12, StopStrings = ["u", ";", "B"] };
        using var batched = TestPaths.NewTempDir("batched");
        using var single = TestPaths.NewTempDir("single");
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", batched.Path, o with { BatchSize = 3 });
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", single.Path, o with { BatchSize = 1 });
        var lengths = Enumerable.Range(0, 3).SelectMany(c => File.ReadAllLines(Extraction.ChunkPath(single.Path, c, ".jsonl")))
            .Select(l => (int)JsonNode.Parse(l)!["tokens"]!).ToList();
        Assert.True(lengths.Distinct().Count() >= 3, $"answer lengths {string.Join(",", lengths)}: too alike to exercise refilling; " +
            string.Join(" | ", File.ReadAllLines(Extraction.ChunkPath(single.Path, 0, ".jsonl")).Select(l => (string)JsonNode.Parse(l)!["generation"]!)));
        AssertSameExtraction(single.Path, batched.Path, 3);
    }

    [Fact]
    public void WhenBothModelsDoNotFitTheyRunOneAtATimePerChunkWithTheSameResults()
    {
        var prompts = Prompts(5);
        var o = Options() with { BatchSize = 2, MaxNewTokens = 8 };
        var baseConfig = ModelConfig.Load(Path.Combine(pair.Base, "config.json"));
        var alignedConfig = ModelConfig.Load(Path.Combine(pair.Aligned, "config.json"));
        long w = alignedConfig.ParameterCount() * 4;
        var notes = new List<string>();
        using var together = TestPaths.NewTempDir("together");
        using var apart = TestPaths.NewTempDir("apart");
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", together.Path, o with { MaxMemory = 1L << 32 }, note: notes.Add);
        Assert.Contains("held together", notes[^1]);
        // room for one model and a prompt or two, not for both
        // (a prompt's working memory estimated for prompts longer than these, so the budget surely holds one prompt)
        var longer = Enumerable.Range(0, 40).ToArray();
        var probe = ExtractionPlan.Choose(baseConfig, alignedConfig, ([longer], [longer]), [0], o with { MaxMemory = 1L << 32 }, 1);
        var budget = w + probe.BytesPerPrompt;
        Assert.True(budget < 2 * w, "the tiny models are smaller than one prompt's working memory: the test cannot separate the modes");
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", apart.Path, o with { MaxMemory = budget }, note: notes.Add);
        Assert.True(notes[^1].Contains("one at a time per chunk"), $"budget {budget}, weights {w}, per prompt {probe.BytesPerPrompt}: {notes[^1]}");
        AssertSameExtraction(together.Path, apart.Path, 3);
        // the batch used is recorded in each chunk; the manifest keeps what was asked
        using (var chunk = SafeTensorsFile.Open(Extraction.ChunkPath(apart.Path, 0, ".safetensors"))) Assert.Equal("2", chunk.Metadata["batch"]);
        using var auto = TestPaths.NewTempDir("auto");
        Extraction.Run(pair.Base, pair.Aligned, prompts, "test", auto.Path, o with { BatchSize = null, MaxMemory = budget }, note: notes.Add);
        var used = System.Text.RegularExpressions.Regex.Match(notes[^1], @"^extract: batch (\d+) \(from the memory budget").Groups[1].Value;
        Assert.NotEqual("", used);
        using (var chunk = SafeTensorsFile.Open(Extraction.ChunkPath(auto.Path, 0, ".safetensors"))) Assert.Equal(used, chunk.Metadata["batch"]);
        Assert.Equal("auto", (string)JsonNode.Parse(File.ReadAllText(Path.Combine(auto.Path, Extraction.ManifestName)))!["settings"]!["batch"]!);
        var e = Assert.Throws<InvalidOperationException>(() =>
            Extraction.Run(pair.Base, pair.Aligned, prompts, "test", TestPaths.NewTempDir("none").Path, o with { MaxMemory = w / 2 }));
        Assert.Contains("more than the memory budget", e.Message);
    }

    [Fact]
    public void IncompatibleExtractionFoldersAreRefused()
    {
        using var a = TestPaths.NewTempDir("a");
        using var b = TestPaths.NewTempDir("b");
        Extraction.Run(pair.Base, pair.Aligned, Prompts(2), "test", a.Path, Options());
        Extraction.Run(pair.Other, pair.Aligned, Prompts(2), "test", b.Path, Options());
        var e = Assert.Throws<InvalidDataException>(() => ExtractionData.Open([a.Path, b.Path]));
        Assert.Contains("different base model", e.Message);
        File.Delete(Extraction.ChunkPath(a.Path, 0, ".safetensors"));
        Assert.Contains("incomplete", Assert.Throws<InvalidDataException>(() => ExtractionData.Open([a.Path])).Message);
    }

    [Fact]
    public void VocabularyMismatchIsRefusedBeforeCompute()
    {
        using var tmp = TestPaths.NewTempDir("vocab");
        var small = Path.Combine(tmp.Path, "small");
        using (var m = CausalLM.Create(TinyModels.Config() with { VocabSize = 200 }, 1)) m.SaveHf(small);
        TinyModels.WriteTokenizer(small);
        var e = Assert.Throws<ArgumentException>(() =>
            Extraction.Run(pair.Base, small, Prompts(1), "test", Path.Combine(tmp.Path, "out"), Options()));
        Assert.Contains("vocabulary", e.Message);
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "out", "chunks")));
    }
}

/// <summary>IProgress that reports synchronously on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
