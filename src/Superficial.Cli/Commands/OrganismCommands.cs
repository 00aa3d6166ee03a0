using System.CommandLine;
using Spectre.Console;
using Superficial.Organism;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>organism build: the embedded default base/aligned pair (and friends), trained here.</summary>
internal static class OrganismCommands
{
    public static void Add(RootCommand root)
    {
        var organism = new Command("organism", "The embedded default: a synthetic world and the models Superficial trains on it.");
        organism.Subcommands.Add(BuildCommand());
        root.Subcommands.Add(organism);
    }

    /// <summary>No promised durations here: they vary many times over with the machine's load (README: Timings has measured ones), and the progress lines give a live ETA.</summary>
    public const string OrganismSizeHelp = "tiny (the tests' size, quickest) or demo (the README's demo, larger models). Built once into the cache; " +
                                           "progress shows an ETA; README (Timings) gives measured build times.";

    public static OrganismSize ParseSize(string s) => s switch
    {
        "tiny" => OrganismSize.Tiny,
        "demo" => OrganismSize.Demo,
        _ => throw new ArgumentException($"--size {s}: expected tiny or demo."),
    };

    /// <summary>Builds (or reuses) an organism with a progress bar per stage, and prints what it made.</summary>
    public static OrganismDescription Build(OrganismSize size, string? outDir, int seed, CancellationToken ct)
    {
        var folder = Path.GetFullPath(outDir ?? OrganismBuilder.DefaultFolder(size, seed));
        if (!File.Exists(Path.Combine(folder, "manifest.json")))
            Note($"building the organism in {folder}" + (outDir is null ? " (the cache: later runs reuse it)" : ""));
        var d = WithProgress("organism", "steps", progress => OrganismBuilder.Build(size, outDir, seed,
            new Progress<OrganismProgress>(p => progress.Report(p.Step, Math.Max(1, p.Steps), $"{p.Stage}, loss {p.Loss:0.000}")), ct));
        var table = new Table().AddColumn("model").AddColumn("parameters").AddColumn("trained in");
        foreach (var (m, n) in d.Parameters)
            table.AddRow(m, $"{n:N0}", d.Seconds.TryGetValue(m, out var s) ? $"{s:0.0} s" : "-");
        Say($"{(d.Reused ? "reused" : "built")} organism ({size.ToString().ToLowerInvariant()}, seed {seed}, vocabulary {d.VocabSize}) in {d.Folder}");
        AnsiConsole.Write(table);
        Say("tasks (evaluation examples): " + string.Join(", ", d.TaskExamples.Select(kv => $"{kv.Key} {kv.Value}")));
        return d;
    }

    static Command BuildCommand()
    {
        var size = Opt("--size", OrganismSizeHelp, defaultValue: () => "demo");
        var output = Opt<string?>("--out", "Folder to build in (default: the cache, ~/.cache/superficial/organism/...).");
        var seed = Opt("--seed", "World and training seed.", defaultValue: () => 0);
        var cmd = new Command("build", "Generate the world and corpus, train the tokenizer and the models (or reuse a finished build).") { size, output, seed };
        cmd.SetAction(Action((p, ct) =>
        {
            Build(ParseSize(p.GetValue(size)!), p.GetValue(output), p.GetValue(seed), ct);
            return 0;
        }));
        return cmd;
    }
}
