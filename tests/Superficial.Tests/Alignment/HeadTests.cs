using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Alignment;

/// <summary>The head's loss and gradients, training on a planted head, and the head as a logit transform.</summary>
public class HeadTests
{
    /// <summary>Float64 base states h [n, H], an LM head W [V, H] and a teacher's top-k (distinct ids, sorted logits) per row.</summary>
    static (TorchSharp.torch.Generator Gen, Tensor Hidden, Tensor W, Tensor TopIds, Tensor TopLogits) RandomTeacher(int seed, int n, int h, int v, int k)
    {
        var gen = new TorchSharp.torch.Generator((ulong)seed);
        var hid = randn([n, h], ScalarType.Float64, generator: gen);
        var w = randn([v, h], ScalarType.Float64, generator: gen);
        var topLogits = randn([n, k], ScalarType.Float64, generator: gen).sort(1, descending: true).Values;
        var topIds = stack(Enumerable.Range(0, n).Select(_ => randperm(v, generator: gen).narrow(0, 0, k)).ToArray());
        return (gen, hid, w, topIds, topLogits);
    }

    [Fact]
    public void LossGradientMatchesFiniteDifferences()
    {
        int n = 6, h = 5, v = 11, k = 4;
        var (gen, hid, w, topIds, topLogits) = RandomTeacher(5, n, h, v, k);
        using var head = new SuperficialHead(randn([h, h], ScalarType.Float64, generator: gen) * 0.3, v, trainable: true);
        var a = head.A!;
        var loss = HeadTrainer.Loss(HeadTrainer.Student(hid, w, head), topIds, topLogits);
        loss.backward();
        var grad = a.grad!.clone();
        const double eps = 1e-6;
        using var noGrad = no_grad();
        for (int i = 0; i < h; i++)
            for (int j = 0; j < h; j++)
            {
                var plus = a.clone(); plus[i, j] = plus[i, j] + eps;
                var minus = a.clone(); minus[i, j] = minus[i, j] - eps;
                using var hp = new SuperficialHead(plus, v);
                using var hm = new SuperficialHead(minus, v);
                double fd = (HeadTrainer.Loss(HeadTrainer.Student(hid, w, hp), topIds, topLogits).item<double>()
                             - HeadTrainer.Loss(HeadTrainer.Student(hid, w, hm), topIds, topLogits).item<double>()) / (2 * eps);
                Assert.Equal(fd, grad[i, j].item<double>(), 1e-6);
            }
        // the loss is the KL divergence to the dense teacher distribution (zero outside the top-k)
        var dense = zeros([n, v], ScalarType.Float64).scatter_(1, topIds, topLogits.softmax(1));
        var logq = HeadTrainer.Student(hid, w, head).log_softmax(1);
        var kl = (dense * ((dense + 1e-300).log() - logq)).sum(1).mean().item<double>();
        Assert.Equal(kl, loss.item<double>(), 1e-9);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(3)]
    public void HandWrittenGradientInChunksEqualsAutograd(int? rank)
    {
        int n = 7, h = 6, v = 13, k = 5;
        var (gen, hid, w, topIds, topLogits) = RandomTeacher(9, n, h, v, k);
        using var head = rank is int r
            ? new SuperficialHead(randn([h, r], ScalarType.Float64, generator: gen) * 0.3, randn([r, h], ScalarType.Float64, generator: gen) * 0.3, v, trainable: true)
            : new SuperficialHead(randn([h, h], ScalarType.Float64, generator: gen) * 0.3, v, trainable: true);
        Tensor? a = head.A, u = head.U, vv = head.V;
        var student = HeadTrainer.Student(hid, w, head);
        var loss = HeadTrainer.Loss(student, topIds, topLogits);
        loss.backward();
        var expected = new[] { a, u, vv }.Where(p => p is not null).Select(p => p!.grad!.clone()).ToArray();
        long expectedTop1 = student.argmax(-1).eq(topIds.select(1, 0)).sum().item<long>();
        foreach (var p in new[] { a, u, vv }) p?.grad?.zero_();

        using var buffer = empty([3, v], ScalarType.Float64); // 3 rows per chunk: 7 rows take three chunks
        var (lossSum, top1) = HeadTrainer.LossAndGradient(hid, w, head, topIds, topLogits, buffer, true, n);
        Assert.Equal(loss.item<double>() * n, lossSum, 1e-9);
        Assert.Equal(expectedTop1, top1);
        var actual = new[] { a, u, vv }.Where(p => p is not null).Select(p => p!.grad!).ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].allclose(actual[i], rtol: 1e-9, atol: 1e-12),
                $"gradient {i}: max diff {(expected[i] - actual[i]).abs().max().item<double>()}");
    }

    /// <summary>Writes an extraction folder whose teacher is a known head: top-k of W(h + A* h) (soft-capped when <paramref name="cap"/> is given).</summary>
    internal static string PlantedExtraction(string dir, Tensor w, Tensor aStar, int positions, int topK, int seed, double? cap = null)
    {
        var gen = new TorchSharp.torch.Generator((ulong)seed);
        int hsize = (int)w.shape[1];
        Directory.CreateDirectory(Path.Combine(dir, "chunks"));
        int chunks = 4, per = positions / chunks;
        for (int c = 0; c < chunks; c++)
        {
            using var scope = NewDisposeScope();
            var h = randn([per, hsize], generator: gen);
            using var planted = new SuperficialHead(aStar, (int)w.shape[0]);
            var (vals, idx) = HeadTrainer.Student(h, w, planted, cap).topk(topK, 1);
            var seq = arange(c * per, (c + 1) * per, ScalarType.Int32); // one position per sequence
            SafeTensorsWriter.Write(Extraction.ChunkPath(dir, c, ".safetensors"), [
                KeyValuePair.Create("hidden", h), KeyValuePair.Create("topk_ids", idx.to_type(ScalarType.Int32)),
                KeyValuePair.Create("topk_logits", vals), KeyValuePair.Create("sequence", seq), KeyValuePair.Create("position", zeros_like(seq))]);
        }
        File.WriteAllText(Path.Combine(dir, Extraction.ManifestName), new JsonObject
        {
            ["format"] = Extraction.Format, ["version"] = 1,
            ["base"] = new JsonObject { ["identity"] = "planted", ["hidden_size"] = hsize, ["vocab_size"] = (int)w.shape[0] },
            ["settings"] = new JsonObject { ["top_k"] = topK }, ["chunks"] = chunks,
        }.ToJsonString());
        return dir;
    }

    [Fact]
    public void PlantedHeadIsRecovered()
    {
        using var tmp = TestPaths.NewTempDir("planted");
        var gen = new TorchSharp.torch.Generator(1);
        int h = 16, v = 64;
        var w = randn([v, h], generator: gen);
        var aStar = randn([h, h], generator: gen) * 0.5;
        var data = ExtractionData.Open([PlantedExtraction(Path.Combine(tmp.Path, "ext"), w, aStar, 8000, 20, 2)]);
        var result = HeadTrainer.Train(data, w, tmp.File("head.safetensors"),
            new HeadTrainingOptions { LearningRate = 3e-2, BatchSize = 250, Epochs = 25, Seed = 3 });
        Assert.True(result.BestHeldOut.Top1 >= 0.99, $"held-out top-1 {result.BestHeldOut.Top1}");
        Assert.True(result.BestHeldOut.Kl < 0.02, $"held-out KL {result.BestHeldOut.Kl}");
        Assert.True(result.BestHeldOut.Positions > 200);
        var first = result.History[0]["heldout_kl"]!.GetValue<double>();
        Assert.True(result.BestHeldOut.Kl < first / 10, "KL should fall by an order of magnitude");
        using var head = SuperficialHead.Load(tmp.File("head.safetensors"));
        Assert.Equal("planted", head.BaseModel);
        Assert.Equal(result.BestEpoch, head.Info["best_epoch"]!.GetValue<int>());
    }

    [Fact]
    public void LowRankHeadTrainsAndRoundTrips()
    {
        using var tmp = TestPaths.NewTempDir("lowrank");
        var gen = new TorchSharp.torch.Generator(9);
        int h = 16, v = 64;
        var w = randn([v, h], generator: gen);
        var aStar = randn([h, 2], generator: gen).matmul(randn([2, h], generator: gen)) * 0.5; // rank 2
        var data = ExtractionData.Open([PlantedExtraction(Path.Combine(tmp.Path, "ext"), w, aStar, 4000, 20, 4)]);
        var result = HeadTrainer.Train(data, w, tmp.File("head.safetensors"),
            new HeadTrainingOptions { Rank = 2, LearningRate = 3e-2, BatchSize = 250, Epochs = 25, Seed = 3 });
        Assert.True(result.BestHeldOut.Top1 >= 0.95, $"held-out top-1 {result.BestHeldOut.Top1}");
        using var head = SuperficialHead.Load(tmp.File("head.safetensors"));
        Assert.Equal(2, head.Rank);
    }

    [Fact]
    public void TrainingResumesFromItsCheckpoint()
    {
        using var tmp = TestPaths.NewTempDir("resume");
        var gen = new TorchSharp.torch.Generator(4);
        var w = randn([32, 8], generator: gen);
        var data = ExtractionData.Open([PlantedExtraction(Path.Combine(tmp.Path, "ext"), w, randn([8, 8], generator: gen) * 0.3, 2000, 10, 5)]);
        var o = new HeadTrainingOptions { LearningRate = 1e-2, BatchSize = 100, Epochs = 6, Seed = 1 };
        var straight = HeadTrainer.Train(data, w, tmp.File("straight.safetensors"), o);
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => HeadTrainer.Train(data, w, tmp.File("split.safetensors"), o,
            new SyncProgress<HeadTrainingProgress>(p => { if (p.Epoch == 4) cts.Cancel(); }), cts.Token));
        var resumed = HeadTrainer.Train(data, w, tmp.File("split.safetensors"), o);
        Assert.True(resumed.Resumed);
        Assert.Equal(straight.History.Count, resumed.History.Count);
        Assert.True(straight.Head.A!.allclose(resumed.Head.A!, 1e-5, 1e-6));
        Assert.Throws<InvalidOperationException>(() => HeadTrainer.Train(data, w, tmp.File("split.safetensors"), o with { LearningRate = 1 }));
    }

    [Fact]
    public void ZeroHeadReproducesTheBaseModelExactly()
    {
        using var model = CausalLM.Create(TinyModels.Config(), 1);
        using var zero = SuperficialHead.Zero(model.HiddenSize, model.VocabSize);
        var gen = new TextGenerator(model, null);
        var o = new GenerationOptions { MaxNewTokens = 12, StopIds = [] };
        var prompts = new[] { new[] { 1, 2, 3 }, new[] { 9 } };
        Assert.Equal(gen.Generate(prompts, o).Select(r => r.TokenIds), gen.Generate(prompts, o, new HeadTransform(zero)).Select(r => r.TokenIds));
        var reqs = new[] { new LogLikelihoodRequest([1, 2, 3], [4, 5]), new LogLikelihoodRequest([7], [8, 9, 10]) };
        var plain = LogLikelihood.Compute(model, reqs);
        var headed = LogLikelihood.Compute(model, reqs, new HeadTransform(zero));
        Assert.Equal(plain.Select(r => r.LogProb), headed.Select(r => r.LogProb));
    }

    [Fact]
    public void HeadShiftsLogitsByWAh()
    {
        using var model = CausalLM.Create(TinyModels.Config(), 1);
        var a = randn(model.HiddenSize, model.HiddenSize) * 0.1;
        using var head = new SuperficialHead(a, model.VocabSize);
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 3, 4, 5, 6 }, [1, 4]);
        var h = model.Forward(ids)[0];
        var expected = (h + h.matmul(a.t())).matmul(model.LmHeadWeight.t())[-1];
        var reqLogp = LogLikelihood.Compute(model, [new LogLikelihoodRequest([3, 4, 5, 6], [7])], new HeadTransform(head))[0].LogProb;
        Assert.Equal(expected.log_softmax(0)[7].item<float>(), reqLogp, 1e-4);
    }

    [Fact]
    public void HeadOnAModelOfAnotherShapeIsRefused()
    {
        using var model = CausalLM.Create(TinyModels.Config(hidden: 48), 1);
        using var head = SuperficialHead.Zero(32, TinyModels.Vocab);
        var e = Assert.Throws<HeadException>(() => new TextGenerator(model, null)
            .Generate([new[] { 1 }], new GenerationOptions { MaxNewTokens = 1 }, new HeadTransform(head)));
        Assert.Contains("hidden size 32", e.Message);
        using var head2 = SuperficialHead.Zero(48, 999);
        Assert.Contains("vocabulary of 999", Assert.Throws<HeadException>(() => head2.CheckFits(model)).Message);
    }
}
