using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.IO;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Analysis;

/// <summary>What <c>superficial analyze</c> reads and how.</summary>
public sealed record AnalyzeOptions
{
    public required IReadOnlyList<string> Data { get; init; }
    public required string Base { get; init; }
    /// <summary>Head files; the first is analysed in depth, all of them appear in the stability and rank tables.</summary>
    public IReadOnlyList<string> Heads { get; init; } = [];
    /// <summary>An evaluation folder in which every head was evaluated (eval --head H1 H2 ...), for portions per head.</summary>
    public string? Eval { get; init; }
    public required string Out { get; init; }
    public string Split { get; init; } = "all";
    public int MaxDepth { get; init; } = 64;
    public int TopTokens { get; init; } = 20;
    public int Components { get; init; } = 8;
    public int Resamples { get; init; } = 1000;
    public int Seed { get; init; }
}

/// <summary>
/// Runs the analyses of <c>superficial analyze</c> and writes analysis.json plus analysis.md/.html: token shift
/// and depth over every extracted position (one streaming pass), which tokens are shifted, the first head's
/// anatomy on its held-out positions, and, with an evaluation folder, each task's portion across the heads.
/// </summary>
public static class Analyzer
{

    public static JsonObject Run(AnalyzeOptions o, Action<string>? log = null, IProgress<(long Done, long Total)>? progress = null, CancellationToken ct = default)
    {
        var data = ExtractionData.Open(o.Data);
        var identity = ModelIdentity.Of(o.Base);
        if (identity != data.BaseIdentity)
            throw new ArgumentException($"`Base` {o.Base} (identity {identity}) is not the base model the extraction used (identity {data.BaseIdentity}).");
        using var w = ModelLoader.LoadLmHead(o.Base);
        var softcap = ModelConfig.Load(Path.Combine(o.Base, "config.json")).FinalLogitSoftcap;
        var tok = TextTokenizer.Load(o.Base);
        var heads = o.Heads.Select(p => SuperficialHead.Load(p)).ToList();
        try
        {
            foreach (var (h, p) in heads.Zip(o.Heads))
                if (h.HiddenSize != data.HiddenSize || h.VocabSize != data.VocabSize)
                    throw new HeadException($"{p}: trained for hidden {h.HiddenSize}, vocab {h.VocabSize}; the extraction has hidden {data.HiddenSize}, vocab {data.VocabSize}.");
            var main = heads.FirstOrDefault();
            var settings = main?.Info["settings"] as JsonObject;
            double fraction = settings?["heldout_fraction"] is JsonNode f ? (double)f : 0.05;
            int splitSeed = settings?["seed"] is JsonNode s ? (int)s : 0;
            bool tail = (string?)settings?["heldout_split"] == "tail";
            IEnumerable<PositionBatch> HeldOut() => data.Batches(true, 1000, data.TopK, fraction, splitSeed, 0, false, tailSplit: tail);

            Directory.CreateDirectory(o.Out);
            var root = new JsonObject
            {
                ["format"] = AnalysisSummary.Format, ["version"] = 1,
                ["inputs"] = new JsonObject
                {
                    ["data"] = new JsonArray(o.Data.Select(d => (JsonNode)Path.GetFullPath(d)).ToArray()), ["base"] = Path.GetFullPath(o.Base),
                    ["heads"] = new JsonArray(o.Heads.Select(h => (JsonNode)Path.GetFullPath(h)).ToArray()), ["eval"] = o.Eval is null ? null : Path.GetFullPath(o.Eval),
                    ["seed"] = o.Seed, ["resamples"] = o.Resamples,
                },
            };
            log?.Invoke($"token shift and depth over {data.Positions} positions ({o.Split})");
            var shift = ShiftAnalysis.Run(data, w, main, new ShiftAnalysisOptions
                { MaxDepth = o.MaxDepth, Split = o.Split, HeldOutFraction = fraction, SplitSeed = splitSeed, Softcap = softcap }, progress, ct);
            root["throughput"] = new JsonObject
            {
                ["positions"] = shift.Positions, ["seconds"] = Math.Round(shift.Seconds, 3), ["positions_per_second"] = Math.Round(shift.PositionsPerSecond, 1),
            };
            root["token_shift"] = AnalysisSummary.TokenShift(shift, o.Split, o.Resamples, o.Seed);
            root["depth"] = AnalysisSummary.Depth(shift, o.Resamples, o.Seed);
            root["tokens"] = AnalysisSummary.Tokens(shift, tok, o.TopTokens);

            if (main is not null)
            {
                log?.Invoke("head anatomy: SVD and truncation curve on held-out positions");
                int topK = data.TopK;
                var trainedOn = (settings?["data"] as JsonArray)?.Select(x => (string)x!).ToArray() ?? [];
                bool same = trainedOn.SequenceEqual(data.Folders.Select(Path.GetFullPath));
                var positions = $"held-out split of the extraction ({(tail ? "last" : "responses,")} fraction {fraction}{(tail ? "" : $", seed {splitSeed}")})" +
                                (same ? ", the head's own held-out positions" : "; NOTE: the head was trained on other folders, so these may include its training positions");
                var anatomy = HeadAnatomy.Analyse(main, w, HeldOut(), o.Components, softcap: softcap);
                root["anatomy"] = AnalysisSummary.Anatomy(anatomy, tok, Path.GetFullPath(o.Heads[0]), positions);
            }
            if (heads.Count > 0)
            {
                var described = heads.Select((h, i) => new EvaluatedHead(Path.GetFullPath(o.Heads[i]), Experiment.HeadVariant(i),
                    h.Rank?.ToString() ?? "full", (h.Info["settings"]?["init_seed"] ?? h.Info["settings"]?["seed"]) is JsonNode sd ? (int)sd : null,
                    h.Info["heldout_kl"] is JsonNode kl ? (double)kl : null)).ToArray();
                log?.Invoke("every head on the first head's held-out positions");
                var common = HeadAnatomy.Evaluate(heads, w, HeldOut(), softcap);
                root["heads"] = new JsonArray(described.Select((h, i) => (JsonNode)new JsonObject
                {
                    ["path"] = h.Path, ["variant"] = o.Eval is null ? null : h.Variant, ["rank"] = h.Rank, ["seed"] = h.Seed,
                    ["heldout_kl"] = h.HeldOutKl, ["heldout_top1"] = heads[i].Info["heldout_top1"] is JsonNode t1 ? (double)t1 : null,
                    ["settings"] = heads[i].Info["settings"]?.DeepClone(),
                    ["common_kl"] = Math.Round(common[i].Kl, 6), ["common_top1"] = Math.Round(common[i].Top1, 6), ["common_n"] = common[i].Positions,
                }).ToArray());
                if (o.Eval is not null)
                {
                    log?.Invoke($"portion across {heads.Count} head(s) from {o.Eval}");
                    root["stability"] = AnalysisSummary.Stability(StabilityAnalysis.FromEval(o.Eval, described));
                }
            }
            Save(o.Out, root);
            return root;
        }
        finally { foreach (var h in heads) h.Dispose(); }
    }

    public static void Save(string dir, JsonObject root) =>
        AtomicFile.WriteAllText(Path.Combine(dir, AnalysisSummary.FileName), root.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }) + "\n");
}
