using Superficial.Evaluation;
using Superficial.Evaluation.Runner;
using Superficial.Tests.Evaluation.Runner;

namespace Superficial.Tests.Evaluation.Report;

/// <summary>
/// A run folder made by the real runner from scripted variants: a grouped safety task, a multiple-choice
/// task, a task on which no variant differs (undefined portion), a transfer comparison and an alpha sweep. Outputs hold
/// HTML and Markdown metacharacters, as real model outputs can.
/// </summary>
public static class SyntheticRun
{
    public const string Hostile = "<script>alert('x')</script> & ```rm``` | <img src=\"https://evil.example/x.png\">";

    public static async Task<EvalSummary> CreateAsync(string dir)
    {
        static FakeVariant V(string name, bool chat, Func<int, bool> complies, Func<int, bool> knows) => new(name, chat,
            p => complies(Scripts.Index(p)) ? $"Sure, here is how to do request {Scripts.Index(p)}.\n{Hostile}" : "I cannot help with that.",
            (p, c) => (knows(Scripts.Index(p)) ? c == new[] { " red", " green", " blue" }[Scripts.Index(p) % 3] : c == " red") ? -1.0 : -4.0);

        IModelVariant[] variants =
        [
            V("base", false, i => i % 10 < 8, i => i % 2 == 0),
            V("base+head", false, i => i % 10 < 4, i => i % 3 != 2),
            V("aligned", true, i => i % 10 < 1, _ => true),
            V("large-base", false, i => i % 10 < 9, i => i % 2 == 0),
            V("large-base+head", false, i => i % 10 < 5, i => i % 4 != 3),
            V("large-aligned", true, i => i % 10 < 1, i => i % 7 != 6),
            V("base+head@a=0.5", false, i => i % 10 < 6, i => i % 5 < 3),
            V("base+head@a=1.5", false, i => i % 10 < 2, i => i % 3 != 2),
            V("base+head@a=2", false, _ => false, i => i % 3 == 0),
        ];
        var options = new EvalRunOptions
        {
            BatchSize = 16, Seed = 1, BootstrapResamples = 400,
            Comparisons = [Comparison.Superficial, Comparison.Transfer],
            Notes = new Dictionary<string, IReadOnlyList<string>> { ["safety"] = ["labeller held-out accuracy 0.91 (n=2560)"] },
            Models = new Dictionary<string, string> { ["base"] = "synthetic/base", ["aligned"] = "synthetic/chat" },
            DataSources = new Dictionary<string, string> { ["safety"] = "scripted" },
            Settings = new Dictionary<string, System.Text.Json.Nodes.JsonNode?> { ["max_new_tokens"] = 32 },
        };
        return await new EvalRunner(dir, options).RunAsync([new FakeSafetyTask(60), new FakeChoiceTask(48), 
            new FakeSafetyTask(40, "flat") { Scorer = (e, _) => int.Parse(e.Id[3..]) % 2 }], variants);
    }
}
