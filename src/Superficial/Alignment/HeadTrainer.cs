using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.IO;
using Superficial.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>How a head's parameters start.</summary>
public enum HeadInit
{
    /// <summary>A = 0 (U = 0 for a low-rank head): training starts exactly at the base model.</summary>
    Zero,
    /// <summary>Uniform in ±1/√fan-in, as nn.Linear initialises (the reference's choice).</summary>
    Random,
}

/// <summary>Which positions are held out to choose the best epoch.</summary>
public enum HeldOutSplit
{
    /// <summary>Whole responses chosen by a seeded hash (the default): no response is split between train and held-out.</summary>
    Sequences,
    /// <summary>The last <see cref="HeadTrainingOptions.HeldOutFraction"/> of the positions in storage order, as the reference implementation splits.</summary>
    Tail,
}

/// <summary>Settings of head training (recorded in the head file).</summary>
public sealed record HeadTrainingOptions
{
    /// <summary>Low-rank head A = U V with this rank; null trains the full hidden x hidden map.</summary>
    public int? Rank { get; init; }
    public HeadInit Init { get; init; } = HeadInit.Zero;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Positions per optimisation step.</summary>
    public int BatchSize { get; init; } = 1000;
    public int Epochs { get; init; } = 20;
    /// <summary>Teacher logits used per position (at most what extraction stored).</summary>
    public int? TopK { get; init; }
    public int Seed { get; init; }
    /// <summary>Seed of the initialisation and the data order only (null: <see cref="Seed"/>), so heads of several
    /// seeds share one held-out split (train-head --seeds).</summary>
    public int? InitSeed { get; init; }
    public double HeldOutFraction { get; init; } = 0.05;
    public HeldOutSplit HeldOutSplit { get; init; } = HeldOutSplit.Sequences;
    /// <summary>Keep the head of the epoch with the lowest held-out KL (default), or the last epoch's (the reference's choice).</summary>
    public bool KeepLast { get; init; }
    /// <summary>Positions shuffled together; bounds memory independently of the data size.</summary>
    public int ShuffleBuffer { get; init; } = 16384;
    /// <summary>
    /// The base model's final logit soft-cap (Gemma 2's final_logit_softcapping; null for most families): the
    /// student is then cap tanh(W (h + A h) / cap), the head acting before the LM head and the cap after, as the
    /// model computes its logits. Set it from the base model's config (train-head does).
    /// </summary>
    public double? FinalLogitSoftcap { get; init; }
}

/// <summary>Loss and top-1 agreement with the aligned model's greedy token, over one pass of a split.</summary>
public readonly record struct HeadMetrics(double Kl, double Top1, long Positions);

/// <summary>Progress: epoch, batches done in it, and the last epoch's metrics.</summary>
public readonly record struct HeadTrainingProgress(int Epoch, int Epochs, long PositionsDone, long PositionsTotal, double RunningKl,
    HeadMetrics? Train, HeadMetrics? HeldOut);

public sealed record HeadTrainingResult(SuperficialHead Head, int BestEpoch, HeadMetrics BestHeldOut, IReadOnlyList<JsonObject> History, bool Resumed);

/// <summary>
/// Step 2 of the method: distil the superficial head. The base model is frozen; only A changes, so that
/// the student logits W(h + A h) match the aligned model's top-k distribution (KL(teacher || student),
/// batch mean; the teacher is the softmax over the stored top-k logits, zero elsewhere). Batches stream
/// from the extraction chunks; the N x vocab student logits are never materialised beyond one batch.
/// The best head by held-out KL is kept; a checkpoint after every epoch allows resuming.
/// </summary>
public static class HeadTrainer
{
    /// <summary>KL(teacher || softmax(student)) averaged over positions, with the teacher given by top-k logits.</summary>
    public static Tensor Loss(Tensor studentLogits, Tensor topIds, Tensor topLogits)
    {
        var p = topLogits.softmax(-1);
        var logP = topLogits.log_softmax(-1);
        var logQ = studentLogits.log_softmax(-1).gather(1, topIds);
        return (p * (logP - logQ)).sum(-1).mean();
    }

    /// <summary>Student logits W (h + A h) for h [n, H], with the head's A (full) or U V (low rank); cap tanh(. / cap) with a soft-cap.</summary>
    public static Tensor Student(Tensor h, Tensor w, SuperficialHead head, double? softcap = null)
    {
        var (a, u, v) = (head.A, head.U, head.V);
        var delta = a is not null ? h.matmul(a.t()) : h.matmul(v!.t()).matmul(u!.t());
        var z = (h + delta).matmul(w.t());
        return softcap is double c ? (z / c).tanh() * c : z;
    }

    /// <summary>Rows of a batch processed together by <see cref="LossAndGradient"/>: bounds memory at rows x vocab.</summary>
    public const int ChunkRows = 256;

    /// <summary>
    /// The training hot path: <see cref="Loss"/> summed over the batch, the count of rows whose argmax is
    /// the teacher's top-1, and (when <paramref name="accumulateGrad"/>) the gradient of the loss averaged
    /// over <paramref name="meanOver"/> rows, added to the head's parameters' <c>.grad</c>. The gradient is written
    /// out by hand because it is simple, d KL / d z = softmax(z) - p (p scattered over the vocabulary),
    /// and because this lets one preallocated [rows, vocab] buffer hold the logits, then the softmax, then
    /// that gradient, chunk after chunk; autograd would allocate several fresh batch x vocab tensors per
    /// step, and on CPU their page faults cost more than the two matmuls. Checked against autograd and
    /// finite differences in the tests. With <paramref name="softcap"/> the student is z = cap tanh(s / cap) for
    /// the linear logits s, and the gradient goes through the cap: d KL / d s = (softmax(z) - p) (1 - (z / cap)^2).
    /// </summary>
    public static (double LossSum, long Top1) LossAndGradient(Tensor h, Tensor w, SuperficialHead head,
        Tensor topIds, Tensor topLogits, Tensor buffer, bool accumulateGrad, long meanOver, double? softcap = null)
    {
        var (a, u, v) = (head.A, head.U, head.V);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long n = h.shape[0];
        int rowsMax = (int)buffer.shape[0];
        double lossSum = 0;
        long top1 = 0;
        Tensor? gA = null, gU = null, gV = null;
        for (long s = 0; s < n; s += rowsMax)
        {
            using var inner = NewDisposeScope();
            long c = Math.Min(rowsMax, n - s);
            var hc = h.narrow(0, s, c);
            var ids = topIds.narrow(0, s, c);
            var tl = topLogits.narrow(0, s, c);
            var t = a is null ? hc.matmul(v!.t()) : null;                 // [c, r] for the low-rank head
            var hp = a is not null ? hc + hc.matmul(a.t()) : hc + t!.matmul(u!.t());
            var z = buffer.narrow(0, 0, c);
            // student logits, in place: through the linear kernel where it outruns libtorch's GEMM (see SkinnyLinear.ManyRows)
            if (!(SkinnyLinear.ManyRows && SkinnyLinear.TryInto(hp, w, z))) z.addmm_(hp, w.t(), beta: 0, alpha: 1);
            Tensor? capSlope = null;
            if (softcap is double cap)
            {
                z.div_(cap).tanh_();
                if (accumulateGrad) capSlope = 1 - z.square();             // d z / d s = 1 - tanh^2
                z.mul_(cap);
            }
            top1 += z.argmax(-1).eq(ids.select(1, 0)).sum().item<long>();
            var zk = z.gather(1, ids);
            var max = z.amax([-1], keepdim: true);
            var sum = z.sub_(max).exp_().sum(-1, keepdim: true);           // z now holds exp(z - max)
            var p = tl.softmax(-1);
            // KL(p || q) per row = sum_k p_k (log p_k - z_k) + logsumexp(z)
            lossSum += ((p * (tl.log_softmax(-1) - zk)).sum(-1) + (max + sum.log()).squeeze(-1)).sum().to_type(ScalarType.Float64).item<double>();
            if (!accumulateGrad) continue;
            z.div_(sum).scatter_add_(1, ids, -p);                          // d loss_row / d z = q - p
            if (capSlope is not null) z.mul_(capSlope);                    // through the soft-cap to the linear logits
            var gh = z.matmul(w).div_(meanOver);                           // [c, H], gradient of the batch mean
            if (a is not null) gA = Add(gA, gh.t().matmul(hc));
            else { gU = Add(gU, gh.t().matmul(t!)); gV = Add(gV, u!.t().matmul(gh.t()).matmul(hc)); }
        }
        foreach (var (param, g) in new[] { (a, gA), (u, gU), (v, gV) })
        {
            if (param is null || g is null) continue;
            if (param.grad is null) param.grad = g.detach().clone().DetachFromDisposeScope();
            else param.grad.add_(g);
        }
        return (lossSum, top1);

        static Tensor Add(Tensor? acc, Tensor x) => acc is null ? x.MoveToOuterDisposeScope() : acc.add_(x);
    }

    /// <param name="log">Receives warnings (e.g. a damaged checkpoint that was set aside).</param>
    public static HeadTrainingResult Train(ExtractionData data, Tensor lmHead, string outPath, HeadTrainingOptions o,
        IProgress<HeadTrainingProgress>? progress = null, CancellationToken ct = default, Action<string>? log = null)
    {
        if (lmHead.shape[0] != data.VocabSize || lmHead.shape[1] != data.HiddenSize)
            throw new HeadException(
                $"the base model's LM head is [{string.Join(", ", lmHead.shape)}] but the extraction data has vocab {data.VocabSize}, hidden {data.HiddenSize}.");
        using var run = new Run(data, lmHead, outPath, o);
        bool resumed = run.Resume(log);
        for (int epoch = run.StartEpoch; epoch <= o.Epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            var train = run.Epoch(epoch, progress, ct);
            var held = run.Evaluate();
            run.Record(epoch, train, held);
            run.Checkpoint(epoch);
            progress?.Report(new HeadTrainingProgress(epoch, o.Epochs, train.Positions, data.Positions, train.Kl, train, held));
        }
        if (!File.Exists(outPath)) run.SaveHead();
        return new HeadTrainingResult(SuperficialHead.Load(outPath), run.BestEpoch, run.Best, run.History, resumed);
    }

    /// <summary>
    /// One training run: the head being trained, its optimizer, and what the epochs so far found. Its steps are
    /// <see cref="Resume"/>, <see cref="Epoch"/>, <see cref="Evaluate"/>, <see cref="Record"/> (keeping the best
    /// head) and <see cref="Checkpoint"/>.
    /// </summary>
    sealed class Run : IDisposable
    {
        readonly ExtractionData data;
        readonly Tensor w;
        readonly string outPath, ckptDir;
        readonly HeadTrainingOptions o;
        readonly int topK;
        readonly SuperficialHead head;
        readonly OptimizerHelper opt;
        readonly Tensor buffer;
        readonly JsonObject settings;
        public List<JsonObject> History { get; private set; } = [];
        public int StartEpoch { get; private set; } = 1;
        public int BestEpoch { get; private set; }
        public HeadMetrics Best { get; private set; } = new(double.PositiveInfinity, 0, 0);

        public Run(ExtractionData data, Tensor lmHead, string outPath, HeadTrainingOptions o)
        {
            (this.data, this.outPath, this.o) = (data, outPath, o);
            ckptDir = outPath + ".ckpt";
            topK = o.TopK ?? data.TopK;
            w = lmHead.to_type(ScalarType.Float32).detach();
            head = SuperficialHead.Initial(data.HiddenSize, data.VocabSize, o.Rank, o.Init, new torch.Generator((ulong)(o.InitSeed ?? o.Seed)));
            opt = optim.Adam(head.Weights, lr: o.LearningRate);
            settings = Settings(data, o, topK);
            buffer = empty(Math.Min(ChunkRows, o.BatchSize), data.VocabSize, ScalarType.Float32);
        }

        /// <summary>Continues from the checkpoint beside the output, if a whole one of this run's settings is there.</summary>
        public bool Resume(Action<string>? log)
        {
            var state = RecoverCheckpoint(ckptDir, log);
            if (state is null) return false;
            if (state["settings"]!.ToJsonString() != settings.ToJsonString())
                throw new InvalidOperationException($"{ckptDir} holds a checkpoint of a run with other data or settings; delete it or choose another `Out`.");
            using (var st = SafeTensorsFile.Open(Path.Combine(ckptDir, "head.safetensors"))) head.LoadValues(st);
            opt.load_state_dict(Path.Combine(ckptDir, "optimizer.bin"));
            StartEpoch = (int)state["epoch"]! + 1;
            BestEpoch = (int)state["best_epoch"]!;
            Best = new HeadMetrics((double)state["best_kl"]!, (double)state["best_top1"]!, (long)state["best_positions"]!);
            History = state["history"]!.AsArray().Select(x => x!.AsObject().DeepClone().AsObject()).ToList();
            return true;
        }

        /// <summary>One pass over the training positions, one optimizer step per batch; returns the pass's mean KL and top-1.</summary>
        public HeadMetrics Epoch(int epoch, IProgress<HeadTrainingProgress>? progress, CancellationToken ct)
        {
            double klSum = 0, top1Sum = 0;
            long seen = 0;
            foreach (var batch in data.Batches(false, o.BatchSize, topK, o.HeldOutFraction, o.Seed, epoch, true, o.ShuffleBuffer, o.InitSeed, o.HeldOutSplit == HeldOutSplit.Tail))
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                using var _ = batch;
                opt.zero_grad();
                int n = batch.Count;
                var (lossSum, top1) = LossAndGradient(batch.Hidden, w, head, batch.TopIds, batch.TopLogits, buffer, true, n, o.FinalLogitSoftcap);
                opt.step();
                klSum += lossSum;
                top1Sum += top1;
                seen += n;
                progress?.Report(new HeadTrainingProgress(epoch, o.Epochs, seen, data.Positions, klSum / seen, null, null));
            }
            return new HeadMetrics(seen == 0 ? 0 : klSum / seen, seen == 0 ? 0 : top1Sum / seen, seen);
        }

        /// <summary>KL and top-1 agreement of the current head on the held-out positions.</summary>
        public HeadMetrics Evaluate()
        {
            using var noGrad = no_grad();
            double kl = 0, top1 = 0;
            long n = 0;
            foreach (var batch in data.Batches(true, o.BatchSize, topK, o.HeldOutFraction, o.Seed, 0, false, o.ShuffleBuffer, tailSplit: o.HeldOutSplit == HeldOutSplit.Tail))
            {
                using var scope = NewDisposeScope();
                using var _ = batch;
                var (lossSum, agree) = LossAndGradient(batch.Hidden, w, head, batch.TopIds, batch.TopLogits, buffer, false, batch.Count, o.FinalLogitSoftcap);
                kl += lossSum;
                top1 += agree;
                n += batch.Count;
            }
            return n == 0 ? new HeadMetrics(0, 0, 0) : new HeadMetrics(kl / n, top1 / n, n);
        }

        /// <summary>Adds the epoch to the history and writes the head file when the epoch is the best so far (or the last, with KeepLast).</summary>
        public void Record(int epoch, HeadMetrics train, HeadMetrics held)
        {
            History.Add(new JsonObject
            {
                ["epoch"] = epoch, ["train_kl"] = train.Kl, ["train_top1"] = train.Top1,
                ["heldout_kl"] = held.Kl, ["heldout_top1"] = held.Top1, ["heldout_positions"] = held.Positions,
            });
            var score = held.Positions > 0 ? held.Kl : train.Kl;
            if (score < Best.Kl || BestEpoch == 0 || o.KeepLast)
            {
                Best = held.Positions > 0 ? held : train;
                BestEpoch = epoch;
                SaveHead();
            }
        }

        /// <summary>Writes the head as it is now, with its training record, to the output file.</summary>
        public void SaveHead()
        {
            var info = new JsonObject
            {
                ["settings"] = Settings(data, o, topK),
                ["extractions"] = new JsonArray(data.Manifests.Select(m => (JsonNode)m.DeepClone()).ToArray()),
                ["best_epoch"] = BestEpoch, ["heldout_kl"] = Best.Kl, ["heldout_top1"] = Best.Top1,
                ["history"] = new JsonArray(History.Select(x => (JsonNode)x.DeepClone()).ToArray()),
            };
            using var snapshot = head.Snapshot(data.BaseIdentity, info);
            snapshot.Save(outPath);
        }

        public void Checkpoint(int epoch) => SaveCheckpoint(ckptDir, head, opt, epoch, BestEpoch, Best, History, settings);

        public void Dispose()
        {
            head.Dispose();
            buffer.Dispose();
            w.Dispose();
        }
    }

    static JsonObject Settings(ExtractionData data, HeadTrainingOptions o, int topK)
    {
        var s = SettingsWithoutCap(data, o, topK);
        if (o.FinalLogitSoftcap is double cap)
        {
            s["final_logit_softcap"] = cap;
            s["loss"] = $"KL(teacher top-k softmax || softmax({cap} tanh(W(h + A h) / {cap}))), batch mean";
        }
        return s;
    }

    static JsonObject SettingsWithoutCap(ExtractionData data, HeadTrainingOptions o, int topK) => new JsonObject
    {
        ["data"] = new JsonArray(data.Folders.Select(f => (JsonNode)Path.GetFullPath(f)).ToArray()),
        ["positions"] = data.Positions, ["rank"] = o.Rank?.ToString() ?? "full", ["init"] = o.Init.Name(), ["lr"] = o.LearningRate,
        ["batch"] = o.BatchSize, ["epochs"] = o.Epochs, ["top_k"] = topK, ["seed"] = o.Seed, ["heldout_fraction"] = o.HeldOutFraction,
        ["shuffle_buffer"] = o.ShuffleBuffer, ["loss"] = "KL(teacher top-k softmax || softmax(W(h + A h))), batch mean",
    }.WithExtras(o);

    // recorded only when they differ from the defaults, so settings of earlier heads and checkpoints stay comparable
    static JsonObject WithExtras(this JsonObject settings, HeadTrainingOptions o)
    {
        if (o.InitSeed is int s) settings["init_seed"] = s;
        if (o.HeldOutSplit != HeldOutSplit.Sequences) settings["heldout_split"] = o.HeldOutSplit.Name();
        if (o.KeepLast) settings["keep"] = "last";
        return settings;
    }

    /// <summary>
    /// Writes the checkpoint into a fresh folder and swaps it in, so a kill at any moment leaves either the
    /// previous or the new checkpoint whole (see <see cref="RecoverCheckpoint"/>). state.json is written last
    /// and every file is flushed to disk before the swap, so a folder with a readable state.json is complete.
    /// </summary>
    static void SaveCheckpoint(string dir, SuperficialHead head, OptimizerHelper opt, int epoch, int bestEpoch, HeadMetrics best,
        List<JsonObject> history, JsonObject settings)
    {
        AtomicFile.ReplaceDirectory(dir, fresh =>
        {
            SafeTensorsWriter.Write(Path.Combine(fresh, "head.safetensors"), head.Tensors());
            opt.save_state_dict(Path.Combine(fresh, "optimizer.bin"));
            AtomicFile.FlushFile(Path.Combine(fresh, "optimizer.bin"));
            AtomicFile.WriteAllText(Path.Combine(fresh, StateFile), new JsonObject
            {
                ["epoch"] = epoch, ["best_epoch"] = bestEpoch, ["best_kl"] = best.Kl, ["best_top1"] = best.Top1,
                ["best_positions"] = best.Positions, ["settings"] = settings.DeepClone(),
                ["history"] = new JsonArray(history.Select(x => (JsonNode)x.DeepClone()).ToArray()),
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    const string StateFile = "state.json";

    /// <summary>
    /// The checkpoint to resume from, after finishing a swap that a kill interrupted: the checkpoint folder
    /// if it is valid, else a valid ".new" (written whole, not yet swapped in), else a valid ".old". A
    /// damaged candidate (torn or unreadable state, head or optimizer file) is removed with a warning that
    /// names the file; with none valid, training starts afresh. Returns the checkpoint's state, or null.
    /// </summary>
    static JsonObject? RecoverCheckpoint(string dir, Action<string>? log)
    {
        foreach (var candidate in new[] { dir, dir + ".new", dir + ".old" })
        {
            if (!Directory.Exists(candidate)) continue;
            if (ValidCheckpoint(candidate, out var state, out var problem))
            {
                if (candidate != dir)
                {
                    if (Directory.Exists(dir)) Directory.Delete(dir, true);
                    Directory.Move(candidate, dir);
                    AtomicFile.FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(dir))!);
                }
                return state;
            }
            log?.Invoke($"ignoring the damaged checkpoint {problem} (an interrupted write?); it is removed, and training resumes " +
                        "from an older checkpoint if one is whole, else starts afresh.");
            Directory.Delete(candidate, true);
        }
        return null;
    }

    /// <summary>Whether a checkpoint folder holds a readable state.json, head and optimizer file; else the file and what is wrong.</summary>
    static bool ValidCheckpoint(string dir, out JsonObject? state, out string problem)
    {
        state = null;
        var file = Path.Combine(dir, StateFile);
        try
        {
            if (!File.Exists(file)) { problem = $"{file} (missing)"; return false; }
            var o = JsonNode.Parse(File.ReadAllText(file)) as JsonObject;
            if (o?["settings"] is not JsonObject || o["history"] is not JsonArray) { problem = $"{file} (not a checkpoint state)"; return false; }
            _ = (int)o["epoch"]!; _ = (int)o["best_epoch"]!; _ = (double)o["best_kl"]!; _ = (double)o["best_top1"]!; _ = (long)o["best_positions"]!;
            file = Path.Combine(dir, "head.safetensors");
            using (var st = SafeTensorsFile.Open(file))
                if (!st.Contains("A") && !(st.Contains("U") && st.Contains("V"))) { problem = $"{file} (no head tensors)"; return false; }
            file = Path.Combine(dir, "optimizer.bin");
            if (!File.Exists(file) || new FileInfo(file).Length == 0) { problem = $"{file} (missing or empty)"; return false; }
            state = o;
            problem = "";
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or IOException or FormatException
                                       or InvalidOperationException or NullReferenceException or ArgumentException)
        {
            problem = $"{file} ({e.Message})";
            return false;
        }
    }
}
