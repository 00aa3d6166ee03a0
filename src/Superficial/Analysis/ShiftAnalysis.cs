using System.Diagnostics;
using Superficial.Alignment;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Analysis;

/// <summary>Settings of the token-shift and depth pass.</summary>
public sealed record ShiftAnalysisOptions
{
    /// <summary>Position indices tracked one by one in the depth profile (deeper ones share a slot).</summary>
    public int MaxDepth { get; init; } = 64;
    /// <summary>"all" positions, or only the head's "heldout" (or "train") sequences.</summary>
    public string Split { get; init; } = "all";
    public double HeldOutFraction { get; init; } = 0.05;
    public int SplitSeed { get; init; }
    /// <summary>Rows whose full-vocabulary logits are formed at once (memory: rows x vocab floats, twice).</summary>
    public int BlockRows { get; init; } = 256;
    /// <summary>The base model's final-logit soft-cap (Gemma 2), applied to both models' logits as the model does.</summary>
    public double? Softcap { get; init; }
}

/// <summary>Per-token counts over one task: how often each id is the aligned model's choice, shifted under the base, and fixed by the head.</summary>
public sealed class TokenCounts(int vocab)
{
    public long[] Chosen { get; } = new long[vocab];
    /// <summary>Chosen by the aligned model and ranked beyond 3 by the base (category shifted).</summary>
    public long[] Shifted { get; } = new long[vocab];
    /// <summary>Of the shifted ones: base + head ranks the token first.</summary>
    public long[] Fixed { get; } = new long[vocab];
    /// <summary>Still shifted (rank beyond 3) under base + head.</summary>
    public long[] StillShifted { get; } = new long[vocab];
}

/// <summary>Everything the pass gathered about one extraction folder (one task).</summary>
public sealed class TaskShift(string task, string folder, int vocab, int maxDepth)
{
    public string Task { get; } = task;
    public string Folder { get; } = folder;
    public List<SequenceTally> Sequences { get; } = [];
    public DepthProfile Depth { get; } = new(maxDepth);
    public TokenCounts Tokens { get; } = new(vocab);
    public long Positions { get; set; }
}

/// <summary>The pass's result and its throughput.</summary>
public sealed record ShiftAnalysisResult(IReadOnlyList<TaskShift> Tasks, long Positions, double Seconds)
{
    public double PositionsPerSecond => Seconds > 0 ? Positions / Seconds : 0;
}

/// <summary>
/// Where and how the aligned model departs from the base, from extraction data alone: for every stored
/// position the base logits W h and the base + head logits W (h + A h) are formed (the stored hidden state is
/// the base model's at that position, so no model forward is needed), and the aligned model's greedy token
/// (its stored top-1) is ranked in both; KL(aligned ‖ ·) is the training loss's definition (teacher = softmax
/// over the stored top-k logits; student normalised over the whole vocabulary). Chunks stream one at a time
/// and logits are formed in blocks of rows, so memory is flat in the number of positions; what is kept is a
/// small tally per response, a fixed-size depth profile and per-token counts.
/// </summary>
public static class ShiftAnalysis
{
    public static ShiftAnalysisResult Run(ExtractionData data, Tensor lmHead, SuperficialHead? head, ShiftAnalysisOptions o,
        IProgress<(long Done, long Total)>? progress = null, CancellationToken ct = default)
    {
        if (lmHead.shape[0] != data.VocabSize || lmHead.shape[1] != data.HiddenSize)
            throw new ArgumentException($"the base LM head is [{string.Join(", ", lmHead.shape)}] but the extraction has vocab {data.VocabSize}, hidden {data.HiddenSize}.");
        if (head is not null && head.HiddenSize != data.HiddenSize)
            throw new HeadException($"the head has hidden size {head.HiddenSize}, the extraction {data.HiddenSize}.");
        if (o.Split is not ("all" or "heldout" or "train")) throw new ArgumentException($"`Split` {o.Split}: expected all, heldout or train.");
        using var noGrad = no_grad();
        var w = lmHead.to_type(ScalarType.Float32);
        var tasks = data.Folders.Select((f, i) => new TaskShift(TaskName(data, i), f, data.VocabSize, o.MaxDepth)).ToArray();
        var watch = Stopwatch.StartNew();
        long done = 0, total = data.Positions;
        foreach (var chunk in data.Chunks)
        {
            ct.ThrowIfCancellationRequested();
            var task = tasks[chunk.Folder];
            using var scope = NewDisposeScope();
            using var st = SafeTensorsFile.Open(chunk.Path);
            var seq = st.Load("sequence", ScalarType.Int32).data<int>().ToArray();
            var pos = st.Load("position", ScalarType.Int32).data<int>().ToArray();
            var keep = Enumerable.Range(0, seq.Length).Where(i => o.Split == "all" ||
                ExtractionData.IsHeldOut(chunk.Folder, seq[i], o.HeldOutFraction, o.SplitSeed) == (o.Split == "heldout")).ToArray();
            if (keep.Length == 0) { done += seq.Length; continue; }
            var idx = tensor(keep.Select(i => (long)i).ToArray());
            var hidden = st.Load("hidden", ScalarType.Float32).index_select(0, idx);
            var ids = st.Load("topk_ids", ScalarType.Int64).index_select(0, idx);
            var logits = st.Load("topk_logits", ScalarType.Float32).index_select(0, idx);
            var tallies = new Dictionary<int, SequenceTally>();
            for (int s = 0; s < keep.Length; s += o.BlockRows)
            {
                using var inner = NewDisposeScope();
                int c = Math.Min(o.BlockRows, keep.Length - s);
                var h = hidden.narrow(0, s, c);
                var topIds = ids.narrow(0, s, c);
                var topLogits = logits.narrow(0, s, c);
                var zBase = CausalLM.SoftCap(h.matmul(w.t()), o.Softcap);
                var zHead = head is null ? zBase : CausalLM.SoftCap((h + head.Delta(h)).matmul(w.t()), o.Softcap);
                var top1 = topIds.select(1, 0);
                var rankBase = TokenShift.Ranks(zBase, top1);
                var rankHead = head is null ? rankBase : TokenShift.Ranks(zHead, top1);
                var klBase = Kl(zBase, topIds, topLogits);
                var klHead = head is null ? klBase : Kl(zHead, topIds, topLogits);
                var chosen = top1.to_type(ScalarType.Int32).data<int>().ToArray();
                for (int j = 0; j < c; j++)
                {
                    int row = keep[s + j], sq = seq[row], p = pos[row];
                    if (!tallies.TryGetValue(sq, out var t)) tallies[sq] = t = new SequenceTally(sq);
                    t.Add(p, rankBase[j], rankHead[j], klBase[j], klHead[j]);
                    task.Depth.Add(p, klBase[j], klHead[j]);
                    int tok = chosen[j];
                    task.Tokens.Chosen[tok]++;
                    if (TokenShift.Classify(rankBase[j]) == ShiftCategory.Shifted)
                    {
                        task.Tokens.Shifted[tok]++;
                        if (rankHead[j] == 1) task.Tokens.Fixed[tok]++;
                        if (TokenShift.Classify(rankHead[j]) == ShiftCategory.Shifted) task.Tokens.StillShifted[tok]++;
                    }
                }
            }
            task.Sequences.AddRange(tallies.Values.OrderBy(t => t.Sequence));
            task.Positions += keep.Length;
            done += seq.Length;
            progress?.Report((done, total));
        }
        return new ShiftAnalysisResult(tasks, tasks.Sum(t => t.Positions), watch.Elapsed.TotalSeconds);
    }

    /// <summary>Per-row KL(softmax(top-k logits) ‖ softmax(z)) over the top-k support, as the head's training loss defines it.</summary>
    public static double[] Kl(Tensor z, Tensor topIds, Tensor topLogits)
    {
        using var scope = NewDisposeScope();
        var p = topLogits.softmax(-1);
        var kl = (p * (topLogits.log_softmax(-1) - z.log_softmax(-1).gather(1, topIds))).sum(-1);
        return kl.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
    }

    /// <summary>The task an extraction folder was made from (its manifest's prompt source), else the folder's name.</summary>
    public static string TaskName(ExtractionData data, int folder)
    {
        var source = (string?)data.Manifests[folder]["prompts"]?["source"];
        if (source is not null && source.StartsWith("task ", StringComparison.Ordinal))
            return source[5..].Split(' ')[0];
        return Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(data.Folders[folder])));
    }
}
