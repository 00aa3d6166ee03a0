using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Analysis;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Analysis;

/// <summary>The analyses' numerics against hand-built cases and direct computations.</summary>
public class AnalysisMathTests
{
    [Fact]
    public void TokenShiftCategoriesOnAHandBuiltDistribution()
    {
        // row 0: token 2 is the argmax; row 1: token 0 is 2nd; row 2: token 3 is 3rd; row 3: token 1 is 4th; row 4: a tie for first
        var logits = tensor(new float[]
        {
            0.1f, 0.2f, 3.0f, 0.0f,
            2.0f, 3.0f, 1.0f, 0.0f,
            2.0f, 3.0f, 0.0f, 1.0f,
            2.0f, 0.0f, 3.0f, 1.0f,
            5.0f, 5.0f, 1.0f, 0.0f,
        }, [5, 4]);
        var ids = tensor(new long[] { 2, 0, 3, 1, 1 });
        var ranks = TokenShift.Ranks(logits, ids);
        Assert.Equal([1, 2, 3, 4, 1], ranks);
        Assert.Equal([ShiftCategory.Unshifted, ShiftCategory.Marginal, ShiftCategory.Marginal, ShiftCategory.Shifted, ShiftCategory.Unshifted],
            ranks.Select(TokenShift.Classify).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenShift.Classify(0));
        Assert.Equal(ShiftCategory.Shifted, TokenShift.Classify(1000));
    }

    [Fact]
    public void PositionBucketsCoverEveryPositionOnce()
    {
        Assert.Equal([0, 1, 2, 3, 4, 4, 4, 4, 5], Enumerable.Range(0, 9).Select(PositionBuckets.Of).ToArray());
        Assert.Equal(PositionBuckets.Count - 1, PositionBuckets.Of(10_000));
        Assert.Equal("4-7", PositionBuckets.Label(4));
        Assert.Equal("64+", PositionBuckets.Label(PositionBuckets.Count - 1));
    }

    /// <summary>A hand-written extraction folder (the on-disk format Extraction writes), no models involved.</summary>
    internal static string WriteExtraction(string dir, Tensor hidden, Tensor topIds, Tensor topLogits, int[] sequence, int[] position, int vocab,
        string task = "synthetic", int chunkRows = 0)
    {
        Directory.CreateDirectory(Path.Combine(dir, "chunks"));
        int n = (int)hidden.shape[0], h = (int)hidden.shape[1], k = (int)topIds.shape[1];
        // chunks never split a response
        var starts = new List<int> { 0 };
        for (int i = 1; i < n; i++) if (sequence[i] != sequence[i - 1] && chunkRows > 0 && i - starts[^1] >= chunkRows) starts.Add(i);
        starts.Add(n);
        for (int c = 0; c + 1 < starts.Count; c++)
        {
            int s = starts[c], len = starts[c + 1] - s;
            SafeTensorsWriter.Write(Extraction.ChunkPath(dir, c, ".safetensors"), [
                KeyValuePair.Create("hidden", hidden.narrow(0, s, len).to_type(ScalarType.Float32)),
                KeyValuePair.Create("topk_ids", topIds.narrow(0, s, len).to_type(ScalarType.Int32)),
                KeyValuePair.Create("topk_logits", topLogits.narrow(0, s, len).to_type(ScalarType.Float32)),
                KeyValuePair.Create("sequence", tensor(sequence[s..(s + len)], ScalarType.Int32)),
                KeyValuePair.Create("position", tensor(position[s..(s + len)], ScalarType.Int32))]);
        }
        File.WriteAllText(Path.Combine(dir, Extraction.ManifestName), new JsonObject
        {
            ["format"] = Extraction.Format, ["version"] = 1,
            ["base"] = new JsonObject { ["identity"] = "synthetic-base", ["hidden_size"] = h, ["vocab_size"] = vocab },
            ["prompts"] = new JsonObject { ["source"] = $"task {task} (extraction split)" },
            ["settings"] = new JsonObject { ["top_k"] = k }, ["chunks"] = starts.Count - 1,
        }.ToJsonString());
        return dir;
    }

    [Fact]
    public void PerPositionKlAndCategoriesEqualADirectComputation()
    {
        int v = 30, hdim = 8, k = 5;
        var gen = new TorchSharp.torch.Generator(3);
        var w = randn([v, hdim], generator: gen);
        // 12 responses of 1..9 tokens
        var seq = new List<int>(); var pos = new List<int>();
        for (int s = 0; s < 12; s++) for (int t = 0; t < 1 + s % 9; t++) { seq.Add(s); pos.Add(t); }
        int n = seq.Count;
        var hidden = randn([n, hdim], generator: gen);
        var topLogits = (randn([n, k], generator: gen) * 2).sort(1, descending: true).Values;
        var topIds = stack(Enumerable.Range(0, n).Select(_ => randperm(v, generator: gen).narrow(0, 0, k)).ToArray());
        using var tmp = TestPaths.NewTempDir("shift");
        WriteExtraction(tmp.Path, hidden, topIds, topLogits, seq.ToArray(), pos.ToArray(), v, chunkRows: 20);
        var data = ExtractionData.Open([tmp.Path]);
        Assert.True(data.Chunks.Count > 1);
        using var head = new SuperficialHead(randn([hdim, hdim], generator: gen) * 0.3f, v);
        var result = ShiftAnalysis.Run(data, w, head, new ShiftAnalysisOptions { MaxDepth = 4, BlockRows = 7 });
        Assert.Equal(n, result.Positions);
        var task = Assert.Single(result.Tasks);
        Assert.Equal("synthetic", task.Task);

        // direct, in float64, row by row
        var w64 = w.to_type(ScalarType.Float64);
        var a64 = head.A!.to_type(ScalarType.Float64);
        double Kl(Tensor z, int i)
        {
            var p = topLogits[i].to_type(ScalarType.Float64).softmax(0);
            var logq = z.log_softmax(0);
            double kl = 0;
            for (int j = 0; j < k; j++) kl += p[j].item<double>() * (Math.Log(p[j].item<double>()) - logq[topIds[i, j].item<long>()].item<double>());
            return kl;
        }
        int Rank(Tensor z, long id) => 1 + (int)z.gt(z[id]).sum().item<long>();
        var klBase = new double[n]; var klHead = new double[n]; var shiftedBase = 0; var unshiftedHead = 0;
        for (int i = 0; i < n; i++)
        {
            var h64 = hidden[i].to_type(ScalarType.Float64);
            var zb = w64.matmul(h64);
            var zh = w64.matmul(h64 + a64.matmul(h64));
            klBase[i] = Kl(zb, i); klHead[i] = Kl(zh, i);
            long top = topIds[i, 0].item<long>();
            if (Rank(zb, top) > 3) shiftedBase++;
            if (Rank(zh, top) == 1) unshiftedHead++;
        }
        for (int p = 0; p < 4; p++)
        {
            var rows = Enumerable.Range(0, n).Where(i => pos[i] == p).ToArray();
            Assert.Equal(rows.Length, task.Depth.Base(p).N);
            Assert.Equal(rows.Average(i => klBase[i]), task.Depth.Base(p).Mean, 4);
            Assert.Equal(rows.Average(i => klHead[i]), task.Depth.Head(p).Mean, 4);
        }
        var deeper = Enumerable.Range(0, n).Where(i => pos[i] >= 4).ToArray();
        Assert.Equal(deeper.Average(i => klBase[i]), task.Depth.Base(4).Mean, 4);
        Assert.Equal(shiftedBase, task.Sequences.Sum(s => Enumerable.Range(0, PositionBuckets.Count).Sum(b => s.Base[b * 3 + 2])));
        Assert.Equal(unshiftedHead, task.Sequences.Sum(s => Enumerable.Range(0, PositionBuckets.Count).Sum(b => s.Head[b * 3])));
        Assert.Equal(12, task.Sequences.Count);
        Assert.Equal(shiftedBase, task.Tokens.Shifted.Sum());

        // the summary's per-task KL is the mean over positions, and the interval contains it
        var depth = AnalysisSummary.Depth(result, 200, 1)["tasks"]![0]!;
        Assert.Equal(klBase.Average(), (double)depth["kl_base"]!, 4);
        Assert.True((double)depth["kl_base_ci95"]![0]! <= klBase.Average() && klBase.Average() <= (double)depth["kl_base_ci95"]![1]!);
        Assert.Equal(1 - klHead.Sum() / klBase.Sum(), (double)depth["gap_closed"]!, 4);
    }

    [Fact]
    public void SvdOfAPlantedHeadRecoversItsRankAndPromotedTokens()
    {
        const int hdim = 16, v = 40, r = 3;
        int[] planted = [7, 21, 33];
        var gen = new TorchSharp.torch.Generator(11);
        // LM head: token planted[i] reads hidden axis i strongly; every other row is small noise
        var w = randn([v, hdim], generator: gen) * 0.05f;
        for (int i = 0; i < r; i++) w[planted[i], i] = 5f;
        // A = Σ s_i e_i v_iᵀ with orthonormal input directions v_i
        var q = linalg.qr(randn([hdim, hdim], ScalarType.Float64, generator: gen)).Q;
        double[] s = [3.0, 2.0, 1.0];
        var a = zeros([hdim, hdim], ScalarType.Float64);
        for (int i = 0; i < r; i++)
        {
            var e = zeros(hdim, ScalarType.Float64); e[i] = 1;
            a += s[i] * e.outer(q[.., i]);
        }
        using var head = new SuperficialHead(a.to_type(ScalarType.Float32), v);
        // positions whose mean coefficient on every v_i is positive, and a teacher that is the full head itself
        int n = 300;
        var hidden = randn([n, hdim], generator: gen) * 0.5f + q.narrow(1, 0, r).sum(1).to_type(ScalarType.Float32);
        var teacher = (hidden + head.Delta(hidden)).matmul(w.t());
        var (tl, ti) = teacher.topk(8, 1);
        var batches = new[] { new PositionBatch(hidden, ti, tl) };
        var result = HeadAnatomy.Analyse(head, w, batches, components: r, tokensPerComponent: 1, ranks: [0, 1, 2, 3, 4, hdim]);

        Assert.Equal(s, result.SingularValues.Take(r).ToArray(), (x, y) => Math.Abs(x - y) < 1e-5);
        Assert.All(result.SingularValues.Skip(r), x => Assert.True(x < 1e-5, $"singular value {x} beyond the planted rank"));
        Assert.Equal(r, HeadAnatomy.EnergyRank(result.SingularValues, 0.999));
        for (int i = 0; i < r; i++)
        {
            Assert.Equal(planted[i], result.Components[i].Promoted[0].Id);
            Assert.True(result.Components[i].MeanCoefficient > 0);
        }
        // truncating at the planted rank changes nothing; one component fewer does
        var full = result.Ablation.Single(p => p.Rank == hdim);
        var atR = result.Ablation.Single(p => p.Rank == r);
        Assert.Equal(full.Kl, atR.Kl, 5);
        Assert.Equal(full.Top1, atR.Top1);
        Assert.Equal(full.Kl, result.Ablation.Single(p => p.Rank == 4).Kl, 5);
        Assert.True(result.Ablation.Single(p => p.Rank == r - 1).Kl > full.Kl + 1e-3);
        Assert.True(result.Ablation.Single(p => p.Rank == 1).Top1 > result.Ablation.Single(p => p.Rank == 0).Top1, string.Join("; ", result.Ablation));
        Assert.Equal(1.0, full.Top1);
    }

    [Fact]
    public void TokensDeepCountsTheLeadingPositionsAboveTwiceTheLateLevel()
    {
        var d = new DepthProfile(16);
        double[] profile = [9, 6, 0.5, 0.4, 0.6, 0.5, 0.4, 0.5, 5, 0.5, 0.4, 0.5];   // two deep tokens, a spike at 8
        for (int r = 0; r < 10; r++)
            for (int p = 0; p < profile.Length; p++) d.Add(p, profile[p], profile[p] / 10);
        Assert.Equal((2, 8), AnalysisSummary.TokensDeep(d));
        Assert.Equal(0.9, d.GapClosed(0), 12);
        Assert.Equal(9, d.Base(0).Mean, 12);
        Assert.Equal(0, d.Base(0).High - d.Base(0).Low, 12);                       // no spread, no width
        // a fully determined late answer (late level 0) does not make tiny early KLs "deep"
        var settled = new DepthProfile(16);
        double[] refusal = [15, 6, 0.06, 0.01, 0.0, 0.0, 0.0, 0.0];
        for (int r = 0; r < 10; r++)
            for (int p = 0; p < refusal.Length; p++) settled.Add(p, refusal[p], 0);
        Assert.Equal((2, 1), AnalysisSummary.TokensDeep(settled));
        // positions reached by fewer than 10 responses do not count
        var thin = new DepthProfile(16);
        for (int p = 0; p < 5; p++) thin.Add(p, 1, 1);
        Assert.Equal((0, -1), AnalysisSummary.TokensDeep(thin));
    }

    [Fact]
    public void EffectiveRanks()
    {
        Assert.Equal(2, HeadAnatomy.EnergyRank([3, 1, 0.1], 0.9));
        Assert.Equal(0, HeadAnatomy.EnergyRank([0, 0], 0.9));
        Assert.Equal(4, HeadAnatomy.EntropyRank([1, 1, 1, 1]), 9);
        Assert.Equal(1, HeadAnatomy.EntropyRank([2, 0, 0]), 9);
        Assert.Equal([0, 1, 2, 4, 8, 16], HeadAnatomy.DefaultRanks(16));
        Assert.Equal([0, 1, 2, 4, 6], HeadAnatomy.DefaultRanks(6));
    }

    [Fact]
    public void CombiningAcrossHeadsSeparatesPromptAndHeadVarianceOnSyntheticData()
    {
        // value of head j on prompt resample r: μ + a_j + e_r, with head effects a_j ~ N(0, σh²) and a prompt effect e_r ~ N(0, σp²) shared by all heads
        static (double[] Points, double[][] Reps) Make(int m, int reps, double sh, double sp, int seed)
        {
            var rng = new Random(seed);
            double N() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            var points = Enumerable.Range(0, m).Select(_ => 0.5 + sh * N()).ToArray();
            var e = Enumerable.Range(0, reps).Select(_ => sp * N()).ToArray();
            return (points, points.Select(p => e.Select(x => p + x).ToArray()).ToArray());
        }
        // many heads: both standard deviations are recovered
        var (p1, r1) = Make(400, 4000, 0.10, 0.05, 1);
        var big = HeadSpread.Combine(p1, r1, 7);
        Assert.InRange(big.HeadSd, 0.09, 0.11);
        Assert.InRange(big.PromptSd, 0.045, 0.055);
        // the two-level bootstrap's variance is the prompt part plus the head part (law of total variance)
        double expected = big.PromptSd * big.PromptSd + big.HeadSd * big.HeadSd * (400 - 1) / (400.0 * 400);
        Assert.InRange(big.CombinedSd * big.CombinedSd, 0.9 * expected, 1.1 * expected);
        Assert.Equal(p1.Average(), big.Mean, 12);
        // few heads, negligible prompt noise: the combined interval is the head-to-head spread of a mean of 5
        var (p2, r2) = Make(5, 4000, 0.10, 1e-6, 2);
        var few = HeadSpread.Combine(p2, r2, 7);
        Assert.True(few.PromptSd < 1e-5);
        Assert.InRange(few.CombinedSd, 0.85 * few.HeadSd * Math.Sqrt(4) / 5, 1.15 * few.HeadSd * Math.Sqrt(4) / 5);
        Assert.True(few.CombinedCi95.Width > 10 * few.PromptCi95.Width);
        // one head: no head-to-head part
        var one = HeadSpread.Combine([p2[0]], [r2[0]], 7);
        Assert.Equal(0, one.HeadSd);
        Assert.Equal(one.PromptSd, one.CombinedSd, 12);
        Assert.Throws<ArgumentException>(() => HeadSpread.Combine([1, 2], [r2[0]], 7));
    }
}
