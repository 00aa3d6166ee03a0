using Superficial.Alignment;
using static TorchSharp.torch;

namespace Superficial.Analysis;

/// <summary>One singular direction of the head: A = Σ s_i u_i v_iᵀ; through the LM head, u_i raises W u_i.</summary>
/// <param name="MeanCoefficient">Mean of v_iᵀ h over the positions analysed (the sign is chosen so it is ≥ 0, so
/// "promoted" means what the direction adds on average).</param>
public sealed record HeadComponent(int Index, double SingularValue, double MeanCoefficient,
    IReadOnlyList<(int Id, double Logit)> Promoted, IReadOnlyList<(int Id, double Logit)> Suppressed);

/// <summary>Held-out KL and top-1 agreement of the head cut to its top <paramref name="Rank"/> singular components (0 = the base model).</summary>
public sealed record AblationPoint(int Rank, double Kl, double Top1, long Positions);

/// <summary>The head's spectrum, its leading directions in token space and the truncation curve.</summary>
public sealed record HeadAnatomyResult(IReadOnlyList<double> SingularValues, int Rank90, int Rank99, double EntropyRank,
    IReadOnlyList<HeadComponent> Components, IReadOnlyList<AblationPoint> Ablation);

/// <summary>
/// The anatomy of a superficial head A (or U V): its singular values; for the top components the tokens
/// each output direction u_i promotes and suppresses through the base LM head (W u_i); and an ablation curve
/// that keeps only the top r components, A_r = Σ_{i≤r} s_i u_i v_iᵀ (the best rank-r approximation of A),
/// and measures held-out KL and top-1 agreement without retraining.
/// </summary>
public static class HeadAnatomy
{
    /// <summary>A = U diag(S) Vh (thin SVD, singular values descending), in float64 for a clean spectrum.</summary>
    public static (Tensor U, Tensor S, Tensor Vh) Svd(SuperficialHead head)
    {
        using var scope = NewDisposeScope();
        var a = head.A is not null ? head.A.to_type(ScalarType.Float64) : head.U!.to_type(ScalarType.Float64).matmul(head.V!.to_type(ScalarType.Float64));
        var (u, s, vh) = linalg.svd(a, fullMatrices: false);
        return (u.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope(), vh.MoveToOuterDisposeScope());
    }

    /// <summary>Smallest r whose top singular values hold <paramref name="energy"/> of Σ s² (0 for the zero head).</summary>
    public static int EnergyRank(IReadOnlyList<double> s, double energy)
    {
        double total = s.Sum(x => x * x), acc = 0;
        if (total <= 0) return 0;
        for (int i = 0; i < s.Count; i++) { acc += s[i] * s[i]; if (acc >= energy * total * (1 - 1e-12)) return i + 1; }
        return s.Count;
    }

    /// <summary>Roy and Vetterli's effective rank exp(H(p)), p_i = s_i / Σ s.</summary>
    public static double EntropyRank(IReadOnlyList<double> s)
    {
        double total = s.Sum();
        if (total <= 0) return 0;
        double h = 0;
        foreach (var x in s) if (x > 0) { var p = x / total; h -= p * Math.Log(p); }
        return Math.Exp(h);
    }

    /// <summary>Ranks of the ablation curve: 0, 1, 2, 4, ... below the full rank, then the full rank.</summary>
    public static int[] DefaultRanks(int hidden)
    {
        var r = new List<int> { 0 };
        for (int k = 1; k < hidden; k *= 2) r.Add(k);
        r.Add(hidden);
        return r.ToArray();
    }

    /// <summary>
    /// Runs the anatomy. <paramref name="positions"/> are (hidden, top-k ids, top-k logits) batches, typically the
    /// head's held-out positions; they are read once, every truncation is evaluated on each batch.
    /// </summary>
    public static HeadAnatomyResult Analyse(SuperficialHead head, Tensor lmHead, IEnumerable<PositionBatch> positions,
        int components = 8, int tokensPerComponent = 10, IReadOnlyList<int>? ranks = null, double? softcap = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = lmHead.to_type(ScalarType.Float32);
        var (u, s, vh) = Svd(head);
        var sv = s.data<double>().ToArray();
        int hidden = sv.Length;
        ranks ??= DefaultRanks(hidden);
        if (ranks.Any(r => r < 0 || r > hidden)) throw new ArgumentException($"ablation ranks must lie in 0..{hidden}.");
        var uf = u.to_type(ScalarType.Float32);
        var vhf = vh.to_type(ScalarType.Float32);
        var buffer = zeros(HeadTrainer.ChunkRows, w.shape[0]);
        var kl = new double[ranks.Count];
        var top1 = new long[ranks.Count];
        long n = 0;
        Tensor? hSum = null;
        // the head truncated to each rank (rank 0: the zero head, i.e. the base model)
        var truncated = ranks.Select(r => r == 0 ? SuperficialHead.Zero(hidden, (int)w.shape[0])
            : new SuperficialHead(uf.narrow(1, 0, r) * s.narrow(0, 0, r).to_type(ScalarType.Float32), vhf.narrow(0, 0, r), (int)w.shape[0])).ToArray();
        try
        {
            foreach (var batch in positions)
            {
                using var inner = NewDisposeScope();
                using var _ = batch;
                hSum = hSum is null ? batch.Hidden.sum(0L).MoveToOuterDisposeScope() : hSum.add_(batch.Hidden.sum(0L));
                for (int i = 0; i < ranks.Count; i++)
                {
                    var (loss, agree) = HeadTrainer.LossAndGradient(batch.Hidden, w, truncated[i], batch.TopIds, batch.TopLogits, buffer, false, batch.Count, softcap);
                    kl[i] += loss; top1[i] += agree;
                }
                n += batch.Count;
            }
        }
        finally { foreach (var t in truncated) t.Dispose(); }
        var ablation = ranks.Select((r, i) => new AblationPoint(r, n == 0 ? double.NaN : kl[i] / n, n == 0 ? double.NaN : (double)top1[i] / n, n)).ToArray();

        // orient each direction so that its mean coefficient over the positions is non-negative
        var meanH = hSum is null ? zeros(hidden, ScalarType.Float64) : (hSum / n).to_type(ScalarType.Float64);
        var coef = vh.matmul(meanH).data<double>().ToArray();
        var comps = new List<HeadComponent>();
        for (int i = 0; i < Math.Min(components, hidden); i++)
        {
            double sign = coef[i] < 0 ? -1 : 1;
            var shift = w.matmul(uf.select(1, i) * (float)sign);
            int k = (int)Math.Min(tokensPerComponent, shift.shape[0]);
            var (pv, pi) = shift.topk(k, largest: true);
            var (nv, ni) = shift.topk(k, largest: false);
            comps.Add(new HeadComponent(i + 1, sv[i], sign * coef[i], Pairs(pi, pv), Pairs(ni, nv)));
        }
        return new HeadAnatomyResult(sv, EnergyRank(sv, 0.9), EnergyRank(sv, 0.99), EntropyRank(sv), comps, ablation);
    }

    /// <summary>Held-out KL and top-1 agreement of several heads on the same positions (read once).</summary>
    public static IReadOnlyList<HeadMetrics> Evaluate(IReadOnlyList<SuperficialHead> heads, Tensor lmHead, IEnumerable<PositionBatch> positions, double? softcap = null)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = lmHead.to_type(ScalarType.Float32);
        var buffer = zeros(HeadTrainer.ChunkRows, w.shape[0]);
        var kl = new double[heads.Count];
        var top1 = new long[heads.Count];
        long n = 0;
        foreach (var batch in positions)
        {
            using var inner = NewDisposeScope();
            using var _ = batch;
            for (int i = 0; i < heads.Count; i++)
            {
                var (loss, agree) = HeadTrainer.LossAndGradient(batch.Hidden, w, heads[i], batch.TopIds, batch.TopLogits, buffer, false, batch.Count, softcap);
                kl[i] += loss; top1[i] += agree;
            }
            n += batch.Count;
        }
        return heads.Select((_, i) => n == 0 ? new HeadMetrics(double.NaN, double.NaN, 0) : new HeadMetrics(kl[i] / n, (double)top1[i] / n, n)).ToArray();
    }

    static IReadOnlyList<(int, double)> Pairs(Tensor ids, Tensor values)
    {
        var i = ids.to_type(ScalarType.Int32).data<int>().ToArray();
        var v = values.to_type(ScalarType.Float64).data<double>().ToArray();
        return i.Zip(v).ToArray();
    }
}
