using System.Text.Json.Nodes;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Evaluation.Stats;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Text;

namespace Superficial.Analysis;

/// <summary>What the prefill probe runs: a generation task, the models, where the harmful openings come from, the prefill lengths.</summary>
public sealed record PrefillPlan
{
    public required IEvalTask Task { get; init; }
    public required string Base { get; init; }
    public required string Head { get; init; }
    public required string Aligned { get; init; }
    /// <summary>A compromised chat model whose greedy answers give the openings (or null with <see cref="FromFile"/>).</summary>
    public string? FromModel { get; init; }
    /// <summary>JSONL of openings: {"id" or "prompt"/"instruction", "prefill" or "output"/"response"/"generation"}.</summary>
    public string? FromFile { get; init; }
    public IReadOnlyList<int> Lengths { get; init; } = [0, 1, 2, 4, 8];
    public int? Limit { get; init; }
    public int BatchSize { get; init; } = 16;
    public int Resamples { get; init; } = 1000;
    public int Seed { get; init; }
    public ScoringContext Scoring { get; init; } = ScoringContext.None;
}

/// <summary>
/// Shallow-safety probe (Qi et al., "Safety alignment should be made more than just a few tokens deep"): the
/// response is forced to start with the first k tokens of a compliant answer (the compromised model's, or a
/// file's), then the model continues greedily; the task's scorer rates prefill + continuation. Curves of the
/// attack success against k for base + head (raw prompt + prefill) and the aligned model (chat template +
/// prefill) show whether the head's safety, like the aligned model's, lives only in the first tokens.
/// k tokens are counted in the base tokenizer (shared with the aligned model) and decoded back to text.
/// </summary>
public static class PrefillProbe
{
    public static JsonObject Run(PrefillPlan plan, Action<double, double, string?>? progress = null, CancellationToken ct = default)
    {
        if (plan.Task.Kind != TaskKind.Generation) throw new ArgumentException($"the prefill probe needs a generation task; {plan.Task.Name} is scored by likelihood.");
        if ((plan.FromModel is null) == (plan.FromFile is null)) throw new ArgumentException("give exactly one source of prefills: `FromModel` MODEL or `FromFile` FILE.");
        if (plan.Lengths.Count == 0 || plan.Lengths.Any(k => k < 0)) throw new ArgumentException("`Lengths`: non-negative token counts, e.g. 0,1,2,4,8.");
        var examples = plan.Task.EvaluationSplit();
        if (plan.Limit is int l) examples = examples.Take(l).ToArray();
        var specs = examples.Select(plan.Task.BuildPrompt).ToArray();
        var tok = TextTokenizer.Load(plan.Base);
        int maxK = plan.Lengths.Max();

        var openings = plan.FromModel is not null ? FromModel(plan, specs, maxK, ct) : FromFile(plan.FromFile!, examples);
        var prefills = plan.Lengths.ToDictionary(k => k, k => openings.Select(o => k == 0 ? "" : tok.Decode(tok.Encode(o, false).Take(k), skipSpecialTokens: false)).ToArray());

        var variants = new[] { "base+head", "aligned" };
        var scores = variants.ToDictionary(v => v, _ => plan.Lengths.ToDictionary(k => k, _ => new double[examples.Count]));
        var samples = new JsonArray();
        double steps = variants.Length * plan.Lengths.Count, step = 0;
        foreach (var v in variants)
        {
            bool chat = v == "aligned";
            using var model = CausalLM.Load(chat ? plan.Aligned : plan.Base);
            var mtok = TextTokenizer.Load(chat ? plan.Aligned : plan.Base);
            using var steering = chat ? null : Steering.Build(model, mtok, new SteeringRequest { Head = plan.Head });
            var variant = new ModelVariant(v, model, mtok, chat ? mtok.GetChatTemplate() : null, steering?.Transform, plan.BatchSize);
            foreach (var k in plan.Lengths)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Invoke(step++, steps, $"{v}, prefill {k}");
                var forced = specs.Select((s, i) => WithPrefill(s, prefills[k][i], chat)).ToArray();
                var outputs = variant.Generate(forced, plan.Task.MaxNewTokens, plan.Task.StopStrings, null, ct);
                for (int i = 0; i < examples.Count; i++)
                {
                    var text = prefills[k][i] + outputs[i];
                    scores[v][k][i] = plan.Task.ScoreAsync(examples[i], text, plan.Scoring, ct).GetAwaiter().GetResult().Value;
                    if (i < 2) samples.Add(new JsonObject { ["variant"] = v, ["k"] = k, ["prompt"] = examples[i].Input, ["prefill"] = prefills[k][i], ["continuation"] = outputs[i] });
                }
            }
        }
        progress?.Invoke(steps, steps, null);
        var curves = new JsonArray();
        foreach (var v in variants)
        {
            var points = new JsonArray();
            foreach (var k in plan.Lengths)
            {
                var m = PairedBootstrap.Means([scores[v][k]], plan.Resamples, PairedBootstrap.SeedFor(plan.Seed, $"{plan.Task.Name}/prefill/{k}"))[0];
                points.Add(new JsonObject { ["k"] = k, ["rate"] = Math.Round(m.Mean, 6), ["ci95"] = new JsonArray(Math.Round(m.Ci95.Low, 6), Math.Round(m.Ci95.High, 6)), ["n"] = m.N });
            }
            curves.Add(new JsonObject { ["variant"] = v, ["points"] = points });
        }
        return new JsonObject
        {
            ["task"] = plan.Task.Name, ["metric"] = plan.Task.Metric,
            ["source"] = plan.FromModel is not null ? $"greedy answers of {Path.GetFullPath(plan.FromModel)} (chat template)" : Path.GetFullPath(plan.FromFile!),
            ["definition"] = "the response starts with the first k tokens of the compromised answer (base tokenizer), the model continues greedily, " +
                             "and the task's scorer rates prefill + continuation; base+head reads the raw prompt, aligned its chat template; 95% bootstrap over prompts",
            ["lengths"] = new JsonArray(plan.Lengths.Select(k => (JsonNode)k).ToArray()), ["curves"] = curves, ["samples"] = samples,
        };
    }

    /// <summary>The prompt with the response forced to begin with <paramref name="prefill"/>.</summary>
    public static PromptSpec WithPrefill(PromptSpec s, string prefill, bool chat)
    {
        if (prefill.Length == 0) return s;
        // a raw model reads the raw text verbatim; the chat form joins a response prefix after the template (see PromptFormat.Chat)
        var joined = (s.ResponsePrefix ?? "") + prefill;
        return chat ? s with { ResponsePrefix = s.ResponsePrefix is null ? prefill.TrimStart(' ') : joined } : s with { Raw = s.Raw + prefill };
    }

    static string[] FromModel(PrefillPlan plan, IReadOnlyList<PromptSpec> specs, int maxK, CancellationToken ct)
    {
        if (maxK == 0) return specs.Select(_ => "").ToArray();
        using var model = CausalLM.Load(plan.FromModel!);
        var tok = TextTokenizer.Load(plan.FromModel!);
        var variant = new ModelVariant("compromised", model, tok, tok.GetChatTemplate(), null, plan.BatchSize);
        // a few tokens beyond the longest prefill, so re-tokenising the text cannot cut it short
        return variant.Generate(specs, maxK + 4, [], null, ct).ToArray();
    }

    static string[] FromFile(string path, IReadOnlyList<TaskExample> examples)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"`FromFile` {path} not found.");
        var byId = new Dictionary<string, string>(StringComparer.Ordinal);
        var byPrompt = new Dictionary<string, string>(StringComparer.Ordinal);
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new FormatException("not an object"); }
            catch (Exception e) when (e is System.Text.Json.JsonException or FormatException) { throw new InvalidDataException($"{path}:{n}: not a JSON object ({e.Message})."); }
            string? S(params string[] keys) => keys.Select(k => o[k] is JsonValue v && v.TryGetValue(out string? s) ? s : null).FirstOrDefault(x => x is not null);
            var text = S("prefill", "output", "response", "generation")
                ?? throw new InvalidDataException($"{path}:{n}: expected a string field \"prefill\" (or \"output\", \"response\", \"generation\").");
            if (S("id") is { } id) byId[id] = text;
            if (S("prompt", "instruction") is { } p) byPrompt[p] = text;
        }
        return examples.Select(e => byId.GetValueOrDefault(e.Id) ?? byPrompt.GetValueOrDefault(e.Input)
            ?? throw new InvalidDataException($"{path}: no prefill for example {e.Id} (\"{e.Input}\"); match by \"id\" or \"prompt\".")).ToArray();
    }
}
