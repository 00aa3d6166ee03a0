using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>
/// The families added to the Llama model (Gemma, Gemma 2, OLMo 2, Phi-3, rope variants) beyond parity with
/// transformers: the KV cache against a full recompute, left-padded batches against rows run alone, and the
/// superficial head on Gemma 2, whose final soft-cap must come after the head: z = cap tanh(W (h + A h) / cap).
/// </summary>
public class FamilyTests
{
    static string Dir(string name) => Path.Combine(TestPaths.Fixtures, "reference", "models", name);

    public static TheoryData<string> Families => new()
    {
        "gemma", "gemma2", "gemma2-bf16", "olmo2", "phi3-window", "phi3-longrope", "qwen2-window", "llama-dynamic", "llama-yarn",
        "falcon-new-arch",
    };

    /// <summary>Greedy decoding that recomputes every position from scratch at each step (no cache).</summary>
    static int[] GreedyWithoutCache(CausalLM model, IReadOnlyList<int> prompt, int steps)
    {
        using var noGrad = no_grad();
        var seq = prompt.Select(x => (long)x).ToList();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var hidden = model.Forward(tensor(seq.ToArray(), [1, seq.Count]));
            seq.Add(model.Logits(hidden[0, -1]).argmax().item<long>());
        }
        return seq.Skip(prompt.Count).Select(x => (int)x).ToArray();
    }

    [Theory, MemberData(nameof(Families))]
    public void CachedBatchedGreedyEqualsRecomputeRowByRow(string name)
    {
        // prompts of 3, 9 and 14 tokens, 10 new tokens: past the 8-key windows, longrope's original 16 positions
        // and dynamic scaling's 12
        using var model = CausalLM.Load(Dir(name));
        var gen = new TorchSharp.torch.Generator(7);
        var prompts = new[] { 3, 9, 14 }.Select(n => randint(3, model.VocabSize, [n], generator: gen).data<long>().Select(x => (int)x).ToArray()).ToArray();
        var o = new GenerationOptions { MaxNewTokens = 10, StopIds = [] };
        var generator = new TextGenerator(model, null);
        // Rope that depends on the sequence length (longrope: keys incl. padding; dynamic: largest position in the
        // batch) couples the rows of a batch and leaves cached keys rotated for a shorter length, in transformers as
        // here. Those two run row by row and are compared up to the length where the rotation changes.
        int? limit = name switch { "phi3-longrope" => 16, "llama-dynamic" => 12, _ => null };
        var results = limit is null ? generator.Generate(prompts, o) : prompts.Select(p => generator.Generate([p], o)[0]).ToArray();
        int compared = 0;
        for (int r = 0; r < prompts.Length; r++)
        {
            var expected = GreedyWithoutCache(model, prompts[r], 10);
            int same = limit is int l ? Math.Clamp(l - prompts[r].Length + 1, 0, 10) : 10;
            Assert.Equal(expected.Take(same), results[r].TokenIds.Take(same));
            compared += same;
        }
        Assert.True(compared >= 14);
    }

    [Fact]
    public void Gemma2FinalLogitsAreSoftCapped()
    {
        using var model = CausalLM.Load(Dir("gemma2"));
        Assert.Equal(1.0, model.Config.FinalLogitSoftcap);
        using var noGrad = no_grad();
        var h = model.Forward(tensor(new long[] { 5, 6, 7, 8 }, [1, 4]))[0];
        var linear = model.HeadLogits(h);
        Assert.True(linear.abs().max().item<float>() > 1.5, "the fixture's linear logits should exceed the cap so the cap matters");
        Assert.True(model.Logits(h).allclose((linear / 1.0).tanh() * 1.0, 1e-6, 1e-6));
        Assert.True(model.Logits(h).abs().max().item<float>() <= 1.0f);
    }

    /// <summary>Extraction, training, the head as a transform and log-likelihood scoring agree on z = cap tanh(W(h + A h)/cap).</summary>
    [Fact]
    public void HeadActsBeforeTheSoftCapEverywhere()
    {
        using var model = CausalLM.Load(Dir("gemma2"));
        double cap = model.Config.FinalLogitSoftcap!.Value;
        var a = randn([model.HiddenSize, model.HiddenSize], generator: new TorchSharp.torch.Generator(3)) * 0.2;
        using var head = new SuperficialHead(a, model.VocabSize);
        using var noGrad = no_grad();
        long[] ctx = [5, 6, 7, 8, 9];
        var h = model.Forward(tensor(ctx, [1, ctx.Length]))[0, -1];
        var expected = ((h + h.matmul(a.t())).matmul(model.LmHeadWeight.t()) / cap).tanh() * cap;
        // training's student
        var student = HeadTrainer.Student(h.unsqueeze(0), model.LmHeadWeight, head, cap)[0];
        Assert.True(student.allclose(expected, 1e-5, 1e-6));
        // the model's own logits of the shifted hidden state
        Assert.True(model.Logits(h + h.matmul(a.t())).allclose(expected, 1e-5, 1e-6));
        // scoring with the head as a transform
        var logp = LogLikelihood.Compute(model, [new LogLikelihoodRequest(ctx.Select(x => (int)x).ToArray(), [11])], new HeadTransform(head))[0].LogProb;
        Assert.Equal(expected.log_softmax(0)[11].item<float>(), logp, 1e-4);
        // generation with the head: its first token is the argmax of the capped, shifted logits
        var observer = new LastLogits();
        var first = new TextGenerator(model, null).Generate([ctx.Select(x => (int)x).ToArray()],
            new GenerationOptions { MaxNewTokens = 1, StopIds = [] }, new HeadTransform(head), observer)[0].TokenIds[0];
        Assert.Equal(expected.argmax().item<long>(), first);
        Assert.True(observer.Logits!.allclose(expected.unsqueeze(0), 1e-5, 1e-6), "generation's logits should be the capped, shifted ones");
        // adding the shift after the cap would be a different distribution: the test can tell the two apart
        var wrong = model.Logits(h) + h.matmul(a.t()).matmul(model.LmHeadWeight.t());
        Assert.False(wrong.allclose(expected, 1e-3, 1e-3));
    }

    [Fact]
    public void PlantedHeadIsRecoveredThroughTheSoftCap()
    {
        // the teacher is the top-k of cap tanh(W(h + A* h) / cap) with a cap that bends most logits
        using var tmp = TestPaths.NewTempDir("planted-cap");
        var gen = new TorchSharp.torch.Generator(1);
        int h = 16, v = 64;
        const double cap = 6.0;   // the linear logits have a spread of about 5: the top ones bend, none saturates flat
        var w = randn([v, h], generator: gen);
        var aStar = randn([h, h], generator: gen) * 0.5;
        var data = ExtractionData.Open([Superficial.Tests.Alignment.HeadTests.PlantedExtraction(Path.Combine(tmp.Path, "ext"), w, aStar, 4000, 20, 2, cap)]);
        var o = new HeadTrainingOptions { LearningRate = 3e-2, BatchSize = 250, Epochs = 15, Seed = 3, FinalLogitSoftcap = cap };
        var capped = HeadTrainer.Train(data, w, tmp.File("head.safetensors"), o);
        Assert.True(capped.BestHeldOut.Top1 >= 0.95, $"held-out top-1 {capped.BestHeldOut.Top1}, KL {capped.BestHeldOut.Kl}");
        using var head = SuperficialHead.Load(tmp.File("head.safetensors"));
        Assert.Equal(cap, head.Info["settings"]!["final_logit_softcap"]!.GetValue<double>());
        // a student without the cap cannot match the capped teacher's distribution as closely
        var plain = HeadTrainer.Train(data, w, tmp.File("plain.safetensors"), o with { FinalLogitSoftcap = null });
        Assert.True(capped.BestHeldOut.Kl < plain.BestHeldOut.Kl / 2, $"KL with the cap {capped.BestHeldOut.Kl}, without {plain.BestHeldOut.Kl}");
    }

    sealed class LastLogits : IGenerationObserver
    {
        public Tensor? Logits;
        public void OnStep(IReadOnlyList<int> batchRows, Tensor logits, IReadOnlyList<long> chosen) =>
            Logits = logits.detach().clone().DetachFromDisposeScope();
    }

    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void HandWrittenGradientThroughTheSoftCapMatchesAutogradAndFiniteDifferences(int? rank)
    {
        int n = 7, hsize = 6, v = 13, k = 5;
        const double cap = 1.5;
        var gen = new TorchSharp.torch.Generator(21);
        var hid = randn([n, hsize], ScalarType.Float64, generator: gen);
        var w = randn([v, hsize], ScalarType.Float64, generator: gen);
        var topLogits = randn([n, k], ScalarType.Float64, generator: gen).sort(1, descending: true).Values;
        var topIds = stack(Enumerable.Range(0, n).Select(_ => randperm(v, generator: gen).narrow(0, 0, k)).ToArray());
        using var head = rank is int r
            ? new SuperficialHead(randn([hsize, r], ScalarType.Float64, generator: gen) * 0.3, randn([r, hsize], ScalarType.Float64, generator: gen) * 0.3, v, trainable: true)
            : new SuperficialHead(randn([hsize, hsize], ScalarType.Float64, generator: gen) * 0.3, v, trainable: true);
        var parameters = head.Weights.ToArray();
        double Loss() => HeadTrainer.Loss(HeadTrainer.Student(hid, w, head, cap), topIds, topLogits).item<double>();

        // the cap is active: some linear logits are well beyond it
        Assert.True(HeadTrainer.Student(hid, w, head).abs().max().item<double>() > 2 * cap);
        using var buffer = empty([3, v], ScalarType.Float64);
        var (lossSum, _) = HeadTrainer.LossAndGradient(hid, w, head, topIds, topLogits, buffer, true, n, cap);
        Assert.Equal(Loss() * n, lossSum, 1e-9);
        var hand = parameters.Select(p => p.grad!.clone()).ToArray();

        foreach (var p in parameters) p.grad!.zero_();
        HeadTrainer.Loss(HeadTrainer.Student(hid, w, head, cap), topIds, topLogits).backward();
        for (int i = 0; i < parameters.Length; i++)
            Assert.True(hand[i].allclose(parameters[i].grad!, rtol: 1e-9, atol: 1e-12), $"autograd differs for parameter {i}");

        const double eps = 1e-6;
        using var noGrad = no_grad();
        for (int i = 0; i < parameters.Length; i++)
        {
            var flat = parameters[i].view(-1);
            for (int j = 0; j < flat.shape[0]; j += 3)
            {
                double orig = flat[j].item<double>();
                flat[j] = orig + eps; double plus = Loss();
                flat[j] = orig - eps; double minus = Loss();
                flat[j] = orig;
                Assert.Equal((plus - minus) / (2 * eps), hand[i].view(-1)[j].item<double>(), 1e-6);
            }
        }
        // without the cap the gradient is another one: the cap is not a no-op here
        foreach (var p in parameters) p.grad!.zero_();
        HeadTrainer.LossAndGradient(hid, w, head, topIds, topLogits, buffer, true, n);
        Assert.False(hand[0].allclose(parameters[0].grad!, rtol: 1e-3, atol: 1e-6));
    }
}
