using System.CommandLine;
using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Superficial.Cli;

/// <summary>
/// What a run records about itself (tool version, git commit, command line, date) and the run config file:
/// `--config run.json` supplies option values that flags on the command line override, and commands that
/// write an output folder save every option's effective value there as run.json, so the run can be repeated
/// with `--config DIR/run.json`.
/// </summary>
internal static class RunRecord
{
    public const string FileName = "run.json";

    public static readonly Option<string?> ConfigOption = new("--config")
    {
        Description = "JSON file of option values ({\"tasks\": \"gsm\", \"limit\": 50, ...}); flags given on the command line override it. " +
                      "Commands with an output folder write the values they used there as run.json.",
        Recursive = true,
    };

    public static string Version =>
        typeof(RunRecord).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    static string? _commit;

    /// <summary>The git commit the program was built from (with "-dirty" when sources differ from it), or "unknown".</summary>
    public static string Commit => _commit ??= ReadCommit();

    static string ReadCommit()
    {
        try
        {
            var dir = AppContext.BaseDirectory;
            string Git(string args)
            {
                var psi = new ProcessStartInfo("git", $"-C \"{dir}\" {args}") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                using var p = Process.Start(psi)!;
                var o = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit(5000);
                return p.ExitCode == 0 ? o : throw new InvalidOperationException();
            }
            var head = Git("rev-parse HEAD");
            var dirty = Git("status --porcelain --untracked-files=no -- src").Length > 0;
            return head + (dirty ? "-dirty" : "");
        }
        catch (Exception) { return "unknown"; }
    }

    /// <summary>Version, commit, the full command line and the UTC date, for summaries and manifests.</summary>
    public static Dictionary<string, JsonNode?> Describe(IEnumerable<string> args) => new()
    {
        ["version"] = Version,
        ["commit"] = Commit,
        ["command_line"] = Cli.ProgramName + " " + string.Join(' ', args.Select(Quote)),
        ["date"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
    };

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,+@".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";

    /// <summary>Arguments with the config file's values appended for every option the command line does not give.</summary>
    public static string[] Expand(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.GetValue(ConfigOption) is not { } file) return args;
        if (!File.Exists(file)) throw new ArgumentException($"--config {file}: no such file.");
        JsonObject config;
        try { config = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new JsonException("expected a JSON object of option values"); }
        catch (JsonException e) { throw new ArgumentException($"--config {file}: not a JSON object of option values ({e.Message})."); }
        var command = parse.CommandResult.Command;
        var options = command.Options.Concat(root.Options.Where(o => o.Recursive)).ToArray();
        var extra = new List<string>();
        foreach (var (key, value) in config)
        {
            if (key.StartsWith('_')) continue; // recorded facts (version, command line), not options
            var name = key.StartsWith("--") ? key : "--" + key;
            var option = options.FirstOrDefault(o => o.Name == name || o.Aliases.Contains(name))
                ?? throw new ArgumentException($"--config {file}: \"{key}\" is not an option of {command.Name} " +
                                               $"(options: {string.Join(", ", command.Options.Where(o => !o.Hidden && o.Name.StartsWith("--")).Select(o => o.Name[2..]))}).");
            if (option == ConfigOption) continue;
            if (parse.GetResult(option) is { Implicit: false }) continue; // the command line wins
            foreach (var token in Tokens(option.Name, value, file, key)) extra.Add(token);
        }
        return [.. args, .. extra];
    }

    static IEnumerable<string> Tokens(string name, JsonNode? value, string file, string key) => value switch
    {
        null => [],
        JsonArray a => a.SelectMany(v => Tokens(name, v, file, key)),
        JsonValue v when v.TryGetValue<bool>(out var b) => [name, b ? "true" : "false"],
        JsonValue v when v.TryGetValue<string>(out var s) => [name, s],
        JsonValue v => [name, v.ToJsonString()],
        _ => throw new ArgumentException($"--config {file}: \"{key}\" must be a string, number, true/false or an array of them."),
    };

    /// <summary>
    /// OUT/run.json of a merged evaluation: the first shard's values without the shard options, so that
    /// `eval --config OUT/run.json` repeats the whole run (finding every prediction already there).
    /// </summary>
    public static void WriteMerged(string outDir, string firstShardDir)
    {
        var source = Path.Combine(firstShardDir, FileName);
        if (!File.Exists(source)) return;
        if (JsonNode.Parse(File.ReadAllText(source)) is not JsonObject o) return;
        o.Remove("shard");
        o.Remove("shard-count");
        Superficial.IO.AtomicFile.WriteAllText(Path.Combine(outDir, FileName), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Writes every option's effective value (and version, commit, command line, date) to DIR/run.json.</summary>
    public static string Write(ParseResult parse, string folder, IEnumerable<string> args)
    {
        var o = new JsonObject();
        foreach (var (k, v) in Describe(args)) o["_" + k] = v;
        foreach (var option in parse.CommandResult.Command.Options)
        {
            if (!option.Name.StartsWith("--") || option == ConfigOption || option.Name is "--help") continue;
            var result = parse.GetResult(option);
            object? value = result?.GetValueOrDefault<object?>();
            if (value is null) continue;
            o[option.Name[2..]] = JsonSerializer.SerializeToNode(value);
        }
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName);
        // workers sharing an output folder write it at once: each through its own temporary file
        Superficial.IO.AtomicFile.WriteAllText(path, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return path;
    }
}
