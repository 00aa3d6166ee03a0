using System.Diagnostics;
using Superficial.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Superficial.Organism;

/// <summary>One training sequence: token ids and which positions' next tokens count in the loss (null: all).</summary>
public sealed record TrainingSequence(int[] Ids, bool[]? LossMask = null);

/// <summary>Settings of one training phase (one model).</summary>
public sealed record TrainingPhase(string Name, int Steps, int BatchSize, int SeqLen, double LearningRate,
    double WarmupFraction = 0.05, double MinLrFraction = 0.1, double WeightDecay = 0.01, double ClipNorm = 1.0);

public readonly record struct TrainingProgress(string Phase, int Step, int Steps, double Loss, double TokensPerSecond);

/// <summary>
/// The organism's language-model training loop: AdamW, linear warm-up then cosine decay, gradient clipping,
/// seeded batches. Pretraining samples windows of one packed token stream; fine-tuning samples whole
/// sequences (right-padded) with the loss on the masked positions only (assistant tokens).
/// </summary>
public static class LmTrainer
{
    public static double LearningRate(TrainingPhase p, int step)
    {
        int warm = Math.Max(1, (int)(p.Steps * p.WarmupFraction));
        if (step < warm) return p.LearningRate * (step + 1) / warm;
        double t = (double)(step - warm) / Math.Max(1, p.Steps - warm);
        double min = p.LearningRate * p.MinLrFraction;
        return min + (p.LearningRate - min) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, t)));
    }

    /// <summary>Trains on a packed token stream (pretraining). Returns the loss of each step.</summary>
    public static IReadOnlyList<double> Pretrain(CausalLM model, int[] stream, TrainingPhase p, int seed,
        IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        if (stream.Length <= p.SeqLen + 1) throw new ArgumentException($"the corpus ({stream.Length} tokens) is shorter than one training window ({p.SeqLen + 1}).");
        var rng = new Random(seed);
        return Run(model, p, step =>
        {
            var ids = new long[p.BatchSize * (p.SeqLen + 1)];
            for (int b = 0; b < p.BatchSize; b++)
            {
                int start = rng.Next(stream.Length - p.SeqLen - 1);
                for (int t = 0; t <= p.SeqLen; t++) ids[b * (p.SeqLen + 1) + t] = stream[start + t];
            }
            return (tensor(ids, [p.BatchSize, p.SeqLen + 1]), null);
        }, progress, ct);
    }

    /// <summary>Trains on whole sequences with loss masks (fine-tuning), in shuffled epochs; <paramref name="afterStep"/> sees the model after each step (with the number of steps done), to save snapshots.</summary>
    public static IReadOnlyList<double> FineTune(CausalLM model, IReadOnlyList<TrainingSequence> data, TrainingPhase p, int seed,
        IProgress<TrainingProgress>? progress = null, CancellationToken ct = default, Action<int>? afterStep = null)
    {
        if (data.Count == 0) throw new ArgumentException("no fine-tuning sequences.");
        var rng = new Random(seed);
        var order = new List<int>();
        int cursor = 0;
        return Run(model, p, step =>
        {
            var batch = new List<TrainingSequence>();
            while (batch.Count < p.BatchSize)
            {
                if (cursor >= order.Count) { order = Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).ToList(); cursor = 0; }
                batch.Add(data[order[cursor++]]);
            }
            int len = Math.Min(p.SeqLen + 1, batch.Max(s => s.Ids.Length));
            var ids = new long[batch.Count * len];
            var mask = new float[batch.Count * (len - 1)];
            for (int b = 0; b < batch.Count; b++)
            {
                var s = batch[b];
                for (int t = 0; t < len && t < s.Ids.Length; t++) ids[b * len + t] = s.Ids[t];
                for (int t = 0; t + 1 < len && t + 1 < s.Ids.Length; t++)
                    mask[b * (len - 1) + t] = s.LossMask is null || s.LossMask[t + 1] ? 1 : 0;
            }
            return (tensor(ids, [batch.Count, len]), tensor(mask, [batch.Count, len - 1]));
        }, progress, ct, afterStep);
    }

    static IReadOnlyList<double> Run(CausalLM model, TrainingPhase p, Func<int, (Tensor ids, Tensor? mask)> batches,
        IProgress<TrainingProgress>? progress, CancellationToken ct, Action<int>? afterStep = null)
    {
        model.train();
        var parameters = model.parameters().ToList();
        foreach (var q in parameters) q.requires_grad = true;
        using var opt = optim.AdamW(parameters, lr: p.LearningRate, beta1: 0.9, beta2: 0.95, weight_decay: p.WeightDecay);
        var losses = new List<double>(p.Steps);
        var watch = Stopwatch.StartNew();
        long tokens = 0;
        for (int step = 0; step < p.Steps; step++)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var lr = LearningRate(p, step);
            foreach (var g in opt.ParamGroups) g.LearningRate = lr;
            var (ids, mask) = batches(step);
            var input = ids.narrow(1, 0, ids.shape[1] - 1);
            var target = ids.narrow(1, 1, ids.shape[1] - 1);
            var logits = model.Logits(model.Forward(input));
            var nll = -logits.log_softmax(-1).gather(2, target.unsqueeze(2)).squeeze(2);
            var loss = mask is null ? nll.mean() : (nll * mask).sum() / mask.sum().clamp_min(1);
            opt.zero_grad();
            loss.backward();
            nn.utils.clip_grad_norm_(parameters, p.ClipNorm);
            opt.step();
            var value = loss.item<float>();
            losses.Add(value);
            tokens += input.numel();
            if (step % 10 == 0 || step == p.Steps - 1)
                progress?.Report(new TrainingProgress(p.Name, step + 1, p.Steps, value, tokens / Math.Max(1e-9, watch.Elapsed.TotalSeconds)));
            afterStep?.Invoke(step + 1);
        }
        model.eval();
        foreach (var q in parameters) q.requires_grad = false;
        return losses;
    }
}
