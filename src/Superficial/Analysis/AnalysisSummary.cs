using System.Text.Json.Nodes;
using Superficial.Evaluation.Stats;
using Superficial.Text;

namespace Superficial.Analysis;

/// <summary>
/// Turns the analyses' results into analysis.json sections (numbers with n and 95% intervals), from which
/// <see cref="AnalysisReport"/> draws every table and figure, so the report can be rebuilt from the folder alone.
/// </summary>
public static class AnalysisSummary
{
    public const string FileName = "analysis.json";
    public const string Format = "superficial-analysis";

    static JsonArray Ci(Interval i) => new(Round(i.Low), Round(i.High));
    static JsonNode? Round(double x) => double.IsFinite(x) ? Math.Round(x, 6) : null;

    /// <summary>Token-shift fractions per task (overall and per position bucket), both models, with counts and cluster-bootstrap intervals.</summary>
    public static JsonObject TokenShift(ShiftAnalysisResult r, string split, int resamples, int seed)
    {
        var tasks = new JsonArray();
        foreach (var t in r.Tasks)
        {
            var seqs = t.Sequences;
            JsonObject Categories(Func<SequenceTally, long[]> counts, int? bucket, int salt)
            {
                var o = new JsonObject();
                var denom = seqs.Select(s => (double)(bucket is int b ? s.Positions[b] : s.Positions.Sum())).ToArray();
                for (int c = 0; c < Analysis.TokenShift.Categories; c++)
                {
                    var num = seqs.Select(s => (double)(bucket is int b ? counts(s)[b * 3 + c]
                        : Enumerable.Range(0, PositionBuckets.Count).Sum(k => counts(s)[k * 3 + c]))).ToArray();
                    double total = denom.Sum(), count = num.Sum();
                    o[Analysis.TokenShift.Names[c]] = new JsonObject
                    {
                        ["count"] = (long)count, ["fraction"] = total > 0 ? Round(count / total) : null,
                        ["ci95"] = Ci(ClusterBootstrap.RatioOfSums(num, denom, resamples, seed + salt * 7919 + c)),
                    };
                }
                return o;
            }
            var byPos = new JsonArray();
            for (int b = 0; b < PositionBuckets.Count; b++)
            {
                long n = seqs.Sum(s => s.Positions[b]);
                if (n == 0) continue;
                byPos.Add(new JsonObject
                {
                    ["bucket"] = PositionBuckets.Label(b), ["first_position"] = PositionBuckets.Starts[b], ["n"] = n,
                    ["responses"] = seqs.Count(s => s.Positions[b] > 0),
                    ["base"] = Categories(s => s.Base, b, 2 * b + 1), ["head"] = Categories(s => s.Head, b, 2 * b + 2),
                });
            }
            tasks.Add(new JsonObject
            {
                ["task"] = t.Task, ["folder"] = t.Folder, ["n"] = t.Positions, ["responses"] = seqs.Count,
                ["base"] = Categories(s => s.Base, null, 100), ["head"] = Categories(s => s.Head, null, 101), ["by_position"] = byPos,
            });
        }
        return new JsonObject
        {
            ["split"] = split,
            ["definition"] = "rank of the aligned model's greedy token in the other model's distribution: unshifted = 1, marginal = 2-3, shifted = 4 or more (URIAL)",
            ["interval"] = $"95% percentile bootstrap over responses (clusters), {resamples} resamples",
            ["tasks"] = tasks,
        };
    }

    /// <summary>Per-position KL profile per task, the gap the head closes, and how many tokens deep the base-aligned gap reaches.</summary>
    public static JsonObject Depth(ShiftAnalysisResult r, int resamples, int seed, int minN = 10)
    {
        var tasks = new JsonArray();
        foreach (var t in r.Tasks)
        {
            var d = t.Depth;
            var rows = new JsonArray();
            foreach (var slot in d.Slots)
            {
                var b = d.Base(slot); var h = d.Head(slot);
                rows.Add(new JsonObject
                {
                    ["position"] = slot, ["deeper"] = slot == d.MaxDepth, ["n"] = b.N,
                    ["kl_base"] = Round(b.Mean), ["kl_base_ci95"] = new JsonArray(Round(b.Low), Round(b.High)),
                    ["kl_head"] = Round(h.Mean), ["kl_head_ci95"] = new JsonArray(Round(h.Low), Round(h.High)),
                    ["gap_closed"] = Round(d.GapClosed(slot)),
                });
            }
            var seqs = t.Sequences;
            var kb = seqs.Select(s => s.KlBase.Sum()).ToArray();
            var kh = seqs.Select(s => s.KlHead.Sum()).ToArray();
            var n = seqs.Select(s => (double)s.Positions.Sum()).ToArray();
            double total = n.Sum();
            tasks.Add(new JsonObject
            {
                ["task"] = t.Task, ["n"] = t.Positions, ["responses"] = seqs.Count,
                ["kl_base"] = total > 0 ? Round(kb.Sum() / total) : null, ["kl_base_ci95"] = Ci(ClusterBootstrap.RatioOfSums(kb, n, resamples, seed + 11)),
                ["kl_head"] = total > 0 ? Round(kh.Sum() / total) : null, ["kl_head_ci95"] = Ci(ClusterBootstrap.RatioOfSums(kh, n, resamples, seed + 12)),
                ["gap_closed"] = kb.Sum() > 0 ? Round(1 - kh.Sum() / kb.Sum()) : null,
                ["gap_closed_ci95"] = Ci(ClusterBootstrap.RatioOfSums(kh, kb, resamples, seed + 13, (a, b) => 1 - a / b)),
                ["tokens_deep"] = TokensDeep(d, minN).Deep, ["last_high_position"] = TokensDeep(d, minN).LastHigh, ["by_position"] = rows,
            });
        }
        return new JsonObject
        {
            ["definition"] = "KL(aligned || model) per position over the aligned model's stored top-k support (the head's training loss); " +
                             "gap_closed = 1 - KL(aligned || base+head) / KL(aligned || base)",
            ["tokens_deep_definition"] = "the number of leading positions (0, 1, 2, ...) whose mean KL(aligned || base) exceeds twice the late level " +
                                         $"(the median per-position mean over the later half of the positions with n >= {minN}, at least {MinLateLevel} nats); " +
                                         "last_high_position: the last position above that level (-1: none)",
            ["interval"] = $"per position: mean ± 1.96 sd/sqrt(n) (one value per response); per task: bootstrap over responses, {resamples} resamples",
            ["tasks"] = tasks,
        };
    }

    /// <summary>The late level is at least this (nats), so the threshold is at least 0.1 nats.</summary>
    public const double MinLateLevel = 0.05;

    /// <summary>
    /// How many tokens deep the base–aligned gap is: the number of leading positions whose mean KL(aligned‖base)
    /// exceeds twice the late level (the median per-position mean over the later half of the positions with
    /// n ≥ <paramref name="minN"/>), counted until the first position that does not; and the last position that
    /// does (later spikes, e.g. where the aligned model ends its answer), or -1.
    /// </summary>
    public static (int Deep, int LastHigh) TokensDeep(DepthProfile d, int minN = 10)
    {
        var slots = d.Slots.Where(s => s < d.MaxDepth && d.Base(s).N >= minN).ToArray();
        if (slots.Length < 2) return (0, -1);
        var late = slots.Skip(slots.Length / 2).Select(s => d.Base(s).Mean).OrderBy(x => x).ToArray();
        // where the aligned answer is fully determined later on (late level ~ 0), tiny KLs are not "deep"
        double level = Math.Max(late[late.Length / 2], MinLateLevel);
        int deep = 0, last = -1;
        bool leading = true;
        foreach (var s in slots)
        {
            bool high = d.Base(s).Mean > 2 * level;
            if (leading && high && s == deep) deep++;
            else leading = false;
            if (high) last = s;
        }
        return (deep, last);
    }

    /// <summary>The most often shifted tokens per task and over all tasks, decoded, with how often the head fixes each.</summary>
    public static JsonObject Tokens(ShiftAnalysisResult r, TextTokenizer? tok, int top)
    {
        JsonArray List(IReadOnlyList<TokenCounts> counts)
        {
            int v = counts[0].Chosen.Length;
            long Sum(Func<TokenCounts, long[]> f, int id) => counts.Sum(c => f(c)[id]);
            var ids = Enumerable.Range(0, v).Where(i => Sum(c => c.Shifted, i) > 0)
                .OrderByDescending(i => Sum(c => c.Shifted, i)).ThenBy(i => i).Take(top);
            return new JsonArray(ids.Select(i =>
            {
                long shifted = Sum(c => c.Shifted, i), fixd = Sum(c => c.Fixed, i);
                return (JsonNode)new JsonObject
                {
                    ["id"] = i, ["token"] = Decode(tok, i), ["chosen"] = Sum(c => c.Chosen, i), ["shifted"] = shifted,
                    ["fixed"] = fixd, ["fixed_fraction"] = Round((double)fixd / shifted), ["still_shifted"] = Sum(c => c.StillShifted, i),
                };
            }).ToArray());
        }
        return new JsonObject
        {
            ["definition"] = "shifted: the aligned model's greedy token that the base ranks 4th or lower; fixed: base + head ranks it 1st",
            ["all"] = List(r.Tasks.Select(t => t.Tokens).ToArray()),
            ["tasks"] = new JsonArray(r.Tasks.Select(t => (JsonNode)new JsonObject { ["task"] = t.Task, ["top"] = List([t.Tokens]) }).ToArray()),
        };
    }

    public static string Decode(TextTokenizer? tok, int id) => tok is null ? $"#{id}" : tok.Decode([id], skipSpecialTokens: false);

    public static JsonObject Anatomy(HeadAnatomyResult a, TextTokenizer? tok, string head, string positions)
    {
        JsonArray Tokens(IReadOnlyList<(int Id, double Logit)> list) =>
            new(list.Select(x => (JsonNode)new JsonObject { ["id"] = x.Id, ["token"] = Decode(tok, x.Id), ["logit"] = Round(x.Logit) }).ToArray());
        return new JsonObject
        {
            ["head"] = head, ["positions"] = positions,
            ["singular_values"] = new JsonArray(a.SingularValues.Select(s => Round(s)).ToArray()),
            ["rank_90"] = a.Rank90, ["rank_99"] = a.Rank99, ["entropy_rank"] = Round(a.EntropyRank),
            ["effective_rank_definition"] = "rank_90/rank_99: fewest singular values holding 90%/99% of sum s^2; entropy_rank: exp(entropy of s / sum s) (Roy & Vetterli)",
            ["components"] = new JsonArray(a.Components.Select(c => (JsonNode)new JsonObject
            {
                ["index"] = c.Index, ["singular_value"] = Round(c.SingularValue), ["mean_coefficient"] = Round(c.MeanCoefficient),
                ["promoted"] = Tokens(c.Promoted), ["suppressed"] = Tokens(c.Suppressed),
            }).ToArray()),
            ["ablation"] = new JsonArray(a.Ablation.Select(p => (JsonNode)new JsonObject
            {
                ["rank"] = p.Rank, ["kl"] = Round(p.Kl), ["top1"] = Round(p.Top1), ["n"] = p.Positions,
            }).ToArray()),
        };
    }

    public static JsonArray Stability(IReadOnlyList<TaskStability> s) => new(s.Select(t => (JsonNode)new JsonObject
    {
        ["task"] = t.Task, ["metric"] = t.Metric, ["n"] = t.N, ["rank"] = t.Rank, ["heads"] = new JsonArray(t.Variants.Select(v => (JsonNode)v).ToArray()),
        ["per_head"] = new JsonArray(t.PerHead.Select(p => (JsonNode)new JsonObject
        {
            ["portion"] = p.Value is double v ? Round(v) : null, ["ci95"] = p.Ci95 is { } ci ? Ci(ci) : null,
        }).ToArray()),
        ["portion"] = t.Spread is { } a ? Round(a.Mean) : null,
        ["prompt_sd"] = t.Spread is { } b ? Round(b.PromptSd) : null, ["prompt_ci95"] = t.Spread is { } c ? Ci(c.PromptCi95) : null,
        ["head_sd"] = t.Spread is { } d ? Round(d.HeadSd) : null,
        ["combined_sd"] = t.Spread is { } e ? Round(e.CombinedSd) : null, ["combined_ci95"] = t.Spread is { } f ? Ci(f.CombinedCi95) : null,
        ["note"] = t.Note,
    }).ToArray());
}
