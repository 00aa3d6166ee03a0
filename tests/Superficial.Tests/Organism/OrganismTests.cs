using Superficial.Evaluation;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Organism;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Organism;

/// <summary>Builds the tiny organism once for every test that needs it.</summary>
public sealed class TinyOrganism : IDisposable
{
    public readonly TempDir Root = TestPaths.NewTempDir("organism");
    public readonly OrganismDescription Description;
    public readonly double Seconds;
    public string Folder => Description.Folder;

    public TinyOrganism()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Description = OrganismBuilder.Build(OrganismSize.Tiny, Path.Combine(Root.Path, "tiny"), seed: 0);
        Seconds = watch.Elapsed.TotalSeconds;
    }

    public void Dispose() => Root.Dispose();
}

[CollectionDefinition("tiny organism")]
public class TinyOrganismCollection : ICollectionFixture<TinyOrganism>;

[Collection("tiny organism")]
public class OrganismTests(TinyOrganism organism)
{
    [Fact]
    public void CorpusAndTokenizerAreDeterministic()
    {
        var size = OrganismRecipe.For(OrganismSize.Tiny).Corpus;
        var a = Corpus.Generate(7, size);
        var b = Corpus.Generate(7, size);
        Assert.Equal(a.Pretraining, b.Pretraining);
        Assert.Equal(a.Alignment, b.Alignment);
        Assert.NotEqual(a.Pretraining, Corpus.Generate(8, size).Pretraining);
        var texts = a.Pretraining.Take(300).ToList();
        var t1 = BpeTrainer.Train(texts, 400);
        var t2 = BpeTrainer.Train(texts, 400);
        Assert.Equal(t1.Merges, t2.Merges);
    }

    [Fact]
    public void TrainingIsDeterministicForASeed()
    {
        var config = ModelConfig.Llama(300, 32, 2, 4, 2, 64, 128);
        var stream = Enumerable.Range(0, 5000).Select(i => (i * 7 + i / 13) % 300).ToArray();
        var phase = new TrainingPhase("t", 8, 4, 32, 3e-3);
        using var a = CausalLM.Create(config, 3);
        using var b = CausalLM.Create(config, 3);
        LmTrainer.Pretrain(a, stream, phase, seed: 5);
        LmTrainer.Pretrain(b, stream, phase, seed: 5);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in a.named_parameters()) Assert.True(p.equal(pb[n]).all().item<bool>(), n);
    }

    [Fact]
    public void BuiltTokenizerMatchesTheTrainerThroughMicrosoftMlTokenizers()
    {
        var size = OrganismRecipe.For(OrganismSize.Tiny).Corpus;
        var corpus = Corpus.Generate(0, size);
        var tok = TextTokenizer.Load(Path.Combine(organism.Folder, "tokenizer"));
        var bpe = BpeTrainer.Train(corpus.Pretraining.Concat(corpus.Alignment.Select(c => c.User + "\n" + c.Assistant)), OrganismRecipe.For(OrganismSize.Tiny).VocabSize);
        foreach (var text in corpus.Pretraining.Take(200).Append("Ana has 47 apples. <|im_start|>user\nHi<|im_end|>"))
        {
            Assert.Equal(bpe.Encode(text), tok.Encode(text, false));
            Assert.Equal(text, tok.Decode(tok.Encode(text, false), skipSpecialTokens: false));
        }
        Assert.Equal("chatml", tok.GetChatTemplate().Family);
        Assert.All(tok.Encode("12345", false), id => Assert.Single(tok.Decode([id])));
    }

    [Fact]
    public void SplitsAreDisjoint()
    {
        foreach (var name in OrganismTasks.Names)
        {
            var task = OrganismTasks.Load(name, organism.Folder);
            var extract = task.ExtractionSplit().Select(e => e.Input).ToHashSet();
            Assert.DoesNotContain(task.EvaluationSplit(), e => extract.Contains(e.Input));
            Assert.NotEmpty(task.EvaluationSplit());
        }
        var corpus = Corpus.Generate(0, OrganismRecipe.For(OrganismSize.Tiny).Corpus);
        corpus.CheckDisjoint();
        var pretraining = string.Join("\n", corpus.Pretraining);
        foreach (var e in corpus.Tasks["organism-safety"].Eval)
            Assert.DoesNotContain(OrganismTasks.BuildPrompt("organism-safety", e).Raw, pretraining);
    }

    [Fact]
    public void FoldersLoadThroughTheStandardLoaderAndGenerate()
    {
        Assert.True(organism.Seconds < 600, $"tiny build took {organism.Seconds:0} s");
        Assert.Equal(OrganismRecipe.For(OrganismSize.Tiny).ModelNames.Order(), organism.Description.Parameters.Keys.Order());
        foreach (var name in OrganismRecipe.For(OrganismSize.Tiny).ModelNames)
        {
            var dir = Path.Combine(organism.Folder, name);
            using var m = CausalLM.Load(dir);
            var tok = TextTokenizer.Load(dir);
            var ids = PromptFormat.Encode(tok, new PromptSpec("Question: How do I brew mint tea?\nAnswer:", "How do I brew mint tea?"), tok.GetChatTemplate());
            var r = new TextGenerator(m, tok).Generate([ids], new GenerationOptions { MaxNewTokens = 12 })[0];
            Assert.NotEmpty(r.TokenIds);
        }
        Assert.True(organism.Description.Parameters["large-base"] > organism.Description.Parameters["base"]);
    }

    [Fact]
    public void AlignedRefusesHeldOutHarmfulRequestsMoreOftenThanBase()
    {
        var task = OrganismTasks.Load("organism-safety", organism.Folder);
        var examples = task.EvaluationSplit();
        double Asr(string model, bool chat)
        {
            var dir = Path.Combine(organism.Folder, model);
            using var m = CausalLM.Load(dir);
            var tok = TextTokenizer.Load(dir);
            var v = new ModelVariant(model, m, tok, chat ? tok.GetChatTemplate() : null, null, 16);
            var outs = v.Generate(examples.Select(task.BuildPrompt).ToList(), task.MaxNewTokens, task.StopStrings);
            return examples.Select((e, i) => task.ScoreAsync(e, outs[i], ScoringContext.None).Result.Value).Average();
        }
        double baseAsr = Asr("base", false), alignedAsr = Asr("aligned", true);
        Assert.True(alignedAsr < baseAsr, $"attack success: aligned {alignedAsr:0.00}, base {baseAsr:0.00}");
    }
}
