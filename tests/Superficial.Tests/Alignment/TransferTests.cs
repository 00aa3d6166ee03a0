using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Alignment;

/// <summary>Offsite alignment and recovery: a second model in lockstep adds its head's logit shift.</summary>
public class TransferTests
{
    static CausalLM Small(int seed = 1) => CausalLM.Create(TinyModels.Config(hidden: 32), seed);
    static CausalLM Large(int seed = 5) => CausalLM.Create(TinyModels.Config(hidden: 48, layers: 3), seed);

    static readonly int[][] Prompts = [[1, 2, 3, 4], [9, 8], [40, 41, 42, 43, 44, 45]];
    static readonly GenerationOptions Greedy = new() { MaxNewTokens = 10, StopIds = [] };

    [Fact]
    public void ZeroHeadTransferEqualsTheLargeBaseExactly()
    {
        using var small = Small();
        using var large = Large();
        using var zero = SuperficialHead.Zero(small.HiddenSize, small.VocabSize);
        var gen = new TextGenerator(large, null);
        var plain = gen.Generate(Prompts, Greedy);
        var transferred = gen.Generate(Prompts, Greedy, new SideModelOffset(small, zero));
        Assert.Equal(plain.Select(r => r.TokenIds), transferred.Select(r => r.TokenIds));
        var reqs = new[] { new LogLikelihoodRequest([1, 2, 3], [4, 5, 6]), new LogLikelihoodRequest([7], [8]) };
        Assert.Equal(LogLikelihood.Compute(large, reqs).Select(r => r.LogProb), LogLikelihood.Compute(large, reqs, new SideModelOffset(small, zero)).Select(r => r.LogProb));
    }

    [Fact]
    public void TransferFromAnIdenticalModelEqualsApplyingTheHeadDirectly()
    {
        using var model = Small(3);
        using var twin = Small(3);
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(2)) * 0.2, model.VocabSize);
        var gen = new TextGenerator(model, null);
        foreach (var alpha in new[] { 1.0, 0.5, 2.0 })
        {
            var direct = gen.Generate(Prompts, Greedy, new HeadTransform(head, alpha));
            var beside = gen.Generate(Prompts, Greedy, new SideModelOffset(twin, head, alpha));
            Assert.Equal(direct.Select(r => r.TokenIds), beside.Select(r => r.TokenIds));
            var reqs = new[] { new LogLikelihoodRequest([1, 2, 3], [4, 5, 6]), new LogLikelihoodRequest([7, 7], [8]) };
            var a = LogLikelihood.Compute(model, reqs, new HeadTransform(head, alpha));
            var b = LogLikelihood.Compute(model, reqs, new SideModelOffset(twin, head, alpha));
            for (int i = 0; i < reqs.Length; i++) Assert.Equal(a[i].LogProb, b[i].LogProb, 1e-4);
        }
    }

    [Fact]
    public void LockstepGenerationWithTwoCachesMatchesRecomputation()
    {
        using var small = Small();
        using var large = Large();
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(4)) * 0.3, small.VocabSize);
        var transform = new SideModelOffset(small, head, 1.5);
        var result = new TextGenerator(large, null).Generate(Prompts, Greedy, transform);
        // recompute every step from scratch: z_large(prefix) + 1.5 * W_s A h_s(prefix), no caches
        using var noGrad = no_grad();
        for (int r = 0; r < Prompts.Length; r++)
        {
            var seq = Prompts[r].Select(x => (long)x).ToList();
            foreach (var expected in result[r].TokenIds)
            {
                var ids = tensor(seq.ToArray(), [1, seq.Count]);
                var z = large.Logits(large.Forward(ids))[0, -1];
                var hs = small.Forward(ids)[0, -1].unsqueeze(0);
                var shift = small.Logits(head.Delta(hs))[0];
                Assert.Equal(expected, (z + 1.5 * shift).argmax().item<long>());
                seq.Add(expected);
            }
        }
    }

    static readonly int[][] SidePrompts = [[7, 7, 7, 7, 7, 7, 7], [5], [3, 30, 33]];

    [Fact]
    public void ASideModelReadingItsOwnPromptMatchesRecomputation()
    {
        // the main model reads Prompts (think: a chat template), the side model SidePrompts (the raw prompt),
        // then both read the same generated tokens; every step is checked against full forwards without caches
        using var small = Small();
        using var large = Large();
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(6)) * 0.3, small.VocabSize);
        var transform = new SideModelOffset(small, head, 1.5, readsOwnPrompt: true);
        var gen = new TextGenerator(large, null);
        var result = gen.Generate(Prompts, Greedy, transform, null, default, SidePrompts);
        using var noGrad = no_grad();
        for (int r = 0; r < Prompts.Length; r++)
        {
            var main = Prompts[r].Select(x => (long)x).ToList();
            var side = SidePrompts[r].Select(x => (long)x).ToList();
            foreach (var expected in result[r].TokenIds)
            {
                var z = large.Logits(large.Forward(tensor(main.ToArray(), [1, main.Count])))[0, -1];
                var hs = small.Forward(tensor(side.ToArray(), [1, side.Count]))[0, -1].unsqueeze(0);
                var shift = small.Logits(head.Delta(hs))[0];
                Assert.Equal(expected, (z + 1.5 * shift).argmax().item<long>());
                main.Add(expected);
                side.Add(expected);
            }
        }
        // a batch gives what each row gives alone, and rows that finish early leave the batch cleanly
        for (int r = 0; r < Prompts.Length; r++)
            Assert.Equal(result[r].TokenIds, gen.Generate([Prompts[r]], Greedy, transform, null, default, [SidePrompts[r]])[0].TokenIds);
        var stopping = gen.Generate(Prompts, Greedy with { StopIds = [result[1].TokenIds[2]] }, transform, null, default, SidePrompts);
        for (int r = 0; r < Prompts.Length; r++)
        {
            int cut = result[r].TokenIds.ToList().IndexOf(result[1].TokenIds[2]);
            Assert.Equal(cut < 0 ? result[r].TokenIds : result[r].TokenIds.Take(cut + 1), stopping[r].TokenIds);
        }
        // given the main prompts as side prompts, it is the ordinary lockstep transform
        var same = gen.Generate(Prompts, Greedy, transform, null, default, Prompts);
        Assert.Equal(gen.Generate(Prompts, Greedy, new SideModelOffset(small, head, 1.5)).Select(x => x.TokenIds), same.Select(x => x.TokenIds));
    }

    [Fact]
    public void LogLikelihoodWithASideModelReadingItsOwnContextMatchesRecomputation()
    {
        using var small = Small();
        using var large = Large();
        using var head = new SuperficialHead(randn(32, 32, generator: new TorchSharp.torch.Generator(8)) * 0.3, small.VocabSize);
        var transform = new SideModelOffset(small, head, 0.7, readsOwnPrompt: true);
        var reqs = new[]
        {
            new LogLikelihoodRequest([1, 2, 3], [4, 5, 6], SideContext: [9, 9, 9, 9, 9]),
            new LogLikelihoodRequest([7, 8, 9, 10, 11], [12], SideContext: [2]),
        };
        var got = LogLikelihood.Compute(large, reqs, transform);
        using var noGrad = no_grad();
        for (int i = 0; i < reqs.Length; i++)
        {
            var main = reqs[i].Context.Concat(reqs[i].Continuation).Select(x => (long)x).ToArray();
            var side = reqs[i].SideContext!.Concat(reqs[i].Continuation).Select(x => (long)x).ToArray();
            var z = large.Logits(large.Forward(tensor(main, [1, main.Length])))[0];
            var hs = small.Forward(tensor(side, [1, side.Length]))[0];
            int n = reqs[i].Continuation.Count;
            var zc = z.narrow(0, main.Length - n - 1, n);
            var shift = small.Logits(head.Delta(hs.narrow(0, side.Length - n - 1, n)));
            var logp = (zc + 0.7 * shift).log_softmax(-1);
            double expected = Enumerable.Range(0, n).Sum(j => logp[j, reqs[i].Continuation[j]].item<float>());
            Assert.Equal(expected, got[i].LogProb, 1e-4);
        }
    }

    [Fact]
    public void MismatchedVocabularyOrHiddenSizeIsRefused()
    {
        using var large = Large();
        using var otherVocab = CausalLM.Create(TinyModels.Config() with { VocabSize = 100 }, 1);
        using var head = SuperficialHead.Zero(32, 100);
        var e = Assert.Throws<HeadException>(() => new TextGenerator(large, null).Generate(Prompts, Greedy, new SideModelOffset(otherVocab, head)));
        Assert.Contains("share the vocabulary", e.Message);

        using var small = Small();
        using var wrongHidden = SuperficialHead.Zero(48, small.VocabSize);
        var e2 = Assert.Throws<HeadException>(() => new TextGenerator(large, null).Generate(Prompts, Greedy, new SideModelOffset(small, wrongHidden)));
        Assert.Contains("hidden size 48", e2.Message);
    }

    [Fact]
    public void SteeringRefusesDirectTransferAcrossHiddenSizesAndExplainsOffset()
    {
        using var tmp = TestPaths.NewTempDir("steer");
        var smallDir = TinyModels.WriteModel(Path.Combine(tmp.Path, "small"), 1, hidden: 32);
        var largeDir = TinyModels.WriteModel(Path.Combine(tmp.Path, "large"), 2, hidden: 48);
        using (var h = new SuperficialHead(zeros(32, 32), TinyModels.Vocab) { BaseModel = ModelIdentity.Of(smallDir) }) h.Save(tmp.File("head.safetensors"));
        using var large = CausalLM.Load(largeDir);
        var tok = Superficial.Text.TextTokenizer.Load(largeDir);
        var e = Assert.Throws<HeadException>(() => Steering.Build(large, tok, new SteeringRequest { Head = tmp.File("head.safetensors"), TransferFrom = smallDir, TransferMode = TransferMode.Direct }));
        Assert.Contains("`TransferMode` offset", e.Message);
        Assert.Contains("--transfer-mode offset", Superficial.Cli.FlagNames.Map(e.Message));
        using var offset = Steering.Build(large, tok, new SteeringRequest { Head = tmp.File("head.safetensors"), TransferFrom = smallDir });
        Assert.Contains("small base", offset.Description);
        using var recovery = Steering.Build(large, tok, new SteeringRequest { RecoverWith = tmp.File("head.safetensors"), ViaBase = smallDir });
        Assert.Contains("recovery base", recovery.Description);
        Assert.True(recovery.Transform!.ReadsOwnPrompt); // by default the base reads the raw prompt
        using var same = Steering.Build(large, tok, new SteeringRequest { RecoverWith = tmp.File("head.safetensors"), ViaBase = smallDir, ViaBaseReads = SideModelReads.Same });
        Assert.False(same.Transform!.ReadsOwnPrompt);
        // the command line parses the word; an unknown one is refused naming the flag
        var bad = Assert.Throws<ArgumentException>(() => Superficial.Cli.Choices.Parse<SideModelReads>("--via-base-reads", "chat"));
        Assert.Equal("--via-base-reads chat: expected raw or same.", bad.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Steering.Build(large, tok, new SteeringRequest { RecoverWith = tmp.File("head.safetensors"), ViaBase = smallDir, ViaBaseReads = (SideModelReads)7 }));
    }
}
