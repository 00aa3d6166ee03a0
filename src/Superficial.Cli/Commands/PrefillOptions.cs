using System.CommandLine;
using System.Globalization;
using Superficial.Analysis;
using Superficial.Evaluation;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>The prefill probe's options of analyze (the probe runs when --prefill-task is given).</summary>
internal sealed class PrefillOptions
{
    readonly Option<string?> task = Opt<string?>("--prefill-task", "Run the shallow-safety prefill probe on this generation task (e.g. organism-safety, advbench).");
    readonly Option<string?> aligned = Opt<string?>("--aligned", "The aligned model (for the prefill probe).");
    readonly Option<string?> from = Opt<string?>("--prefill-from", "Compromised chat model whose greedy answers give the prefills.");
    readonly Option<string?> file = Opt<string?>("--prefill-file", "JSONL of prefills: {\"id\" or \"prompt\", \"prefill\" or \"output\"}.");
    readonly Option<string> lengths = Opt("--prefill-lengths", "Prefill lengths in tokens.", defaultValue: () => "0,1,2,4,8");
    readonly Option<int?> limit = Opt<int?>("--prefill-limit", "Use only the first N prompts of the task.");
    readonly Option<string?> data = Opt<string?>("--task-data", "Folder of the real benchmark files (for --prefill-task advbench).");
    readonly Option<string?> organism = Opt<string?>("--organism", "Organism folder (for --prefill-task organism-*).");

    public static PrefillOptions Create() => new();

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { task, aligned, from, file, lengths, limit, data, organism }) cmd.Options.Add(o);
    }

    public PrefillPlan? Parse(ParseResult p, string baseDir, string? head)
    {
        if (p.GetValue(task) is not { } name) return null;
        var t = TaskCatalog.Create(name, p.GetValue(data), p.GetValue(organism));
        return new PrefillPlan
        {
            Task = t, Base = baseDir, Head = head ?? throw new ArgumentException("the prefill probe needs --head."),
            Aligned = p.GetValue(aligned) ?? throw new ArgumentException("the prefill probe needs --aligned."),
            FromModel = p.GetValue(from), FromFile = p.GetValue(file), Limit = p.GetValue(limit),
            Lengths = p.GetValue(lengths)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var k) && k >= 0 ? k
                    : throw new ArgumentException($"--prefill-lengths: \"{s}\" is not a token count.")).ToArray(),
        };
    }
}
