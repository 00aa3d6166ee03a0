using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Superficial.Cli;

/// <summary>How long stages report progress: a live bar, plain lines, or one JSON object per line (all on stderr).</summary>
public enum ProgressMode { Auto, Bar, Lines, Json }

/// <summary>Shared command-line plumbing: option construction, output, error reporting, progress.</summary>
internal static class Cli
{
    /// <summary>The program's name, as users type it (usage lines, messages).</summary>
    public const string ProgramName = "superficial";

    // Width given to output that is not a terminal: log files, pipes, Slurm, CI read whole lines, never wrapped ones.
    const int UnwrappedWidth = 4096;

    /// <summary>Messages and progress: stderr, so stdout holds only a command's results.</summary>
    public static IAnsiConsole Err { get; private set; } = AnsiConsole.Console;

    public static ProgressMode Progress { get; set; } = ProgressMode.Auto;

    /// <summary>The arguments the program was started with (recorded in summaries and run.json).</summary>
    public static IReadOnlyList<string> Args { get; private set; } = [];

    public static readonly Option<string> ProgressOption = new("--progress")
    {
        Description = "How long stages report progress on stderr: auto (a bar on a terminal, else lines with %, rate, ETA and time), bar, lines or json (one object per line).",
        DefaultValueFactory = _ => "auto",
        Recursive = true,
    };

    /// <summary>Sets up both consoles: Spectre's defaults on a terminal; plain, unwrapped, colourless text when redirected.</summary>
    public static void ConfigureConsoles()
    {
        AnsiConsole.Console = Create(Console.Out, Console.IsOutputRedirected);
        Err = Create(Console.Error, Console.IsErrorRedirected);
    }

    static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        if (!redirected) return AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        var c = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        c.Profile.Width = UnwrappedWidth;
        return c;
    }

    static bool Plain(IAnsiConsole c) => c.Profile.Width == UnwrappedWidth;

    public static Option<T> Opt<T>(string name, string description, bool required = false, Func<T>? defaultValue = null)
    {
        var o = new Option<T>(name) { Description = description, Required = required };
        if (defaultValue is not null) o.DefaultValueFactory = _ => defaultValue();
        return o;
    }

    /// <summary>A result line on stdout, printed as given (never read as console markup).</summary>
    public static void Say(string text) => AnsiConsole.Console.WriteLine(text);

    /// <summary>A secondary line (settings, notes) on stderr, grey on a terminal.</summary>
    public static void Note(string text)
    {
        if (Progress == ProgressMode.Json)
            Err.WriteLine(new JsonObject { ["time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), ["kind"] = "note", ["message"] = text }.ToJsonString());
        else Err.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
    }

    /// <summary>A section heading on stdout: a rule on a terminal, "== title ==" in a file.</summary>
    public static void Section(string title)
    {
        if (Plain(AnsiConsole.Console)) Say($"== {title} ==");
        else AnsiConsole.Write(new Rule(Markup.Escape(title)));
    }

    // System.CommandLine names the root after the entry assembly (Superficial.Cli), which cannot be called
    // "superficial" beside the Superficial library; usage lines should show what users type.
    static void NameRoot(RootCommand root) =>
        typeof(Symbol).GetField("<Name>k__BackingField", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)?.SetValue(root, ProgramName);

    /// <summary>Commands that shut down gracefully on SIGTERM by themselves.</summary>
    public static readonly HashSet<Command> DrainOnTermination = [];

    /// <summary>Runs the parsed command. Expected failures (bad input, missing files) print one clear line, not a stack trace.</summary>
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        ConfigureConsoles();
        Args = args;
        NameRoot(root);
        root.Options.Add(ProgressOption);
        root.Options.Add(RunRecord.ConfigOption);
        try
        {
            ModelRunOptions.ApplyThreadsVariable();
            args = RunRecord.Expand(root, args);
        }
        catch (ArgumentException e)
        {
            Err.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return 2;
        }
        try
        {
            var parse = root.Parse(args);
            // Commands in DrainOnTermination handle SIGTERM/SIGINT themselves (serve drains running requests);
            // the others have their token cancelled and are given System.CommandLine's default 2 s.
            var config = DrainOnTermination.Contains(parse.CommandResult.Command)
                ? new InvocationConfiguration { ProcessTerminationTimeout = null } : null;
            return await parse.InvokeAsync(config);
        }
        catch (OperationCanceledException)
        {
            Err.MarkupLine("[yellow]Interrupted. Completed work is on disk; run the same command again to resume.[/]");
            return 130;
        }
    }

    /// <summary>Wraps a command body: user-facing errors become one red line on stderr and exit code 2.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Action(Func<ParseResult, CancellationToken, int> body) =>
        (parse, ct) => Task.Run(() =>
        {
            try
            {
                Progress = ParseProgress(parse.GetValue(ProgressOption));
                return body(parse, ct);
            }
            catch (Exception e) when (IsUserError(e))
            {
                Err.MarkupLine($"[red]error:[/] {Markup.Escape(UserMessage(e))}");
                if (Environment.GetEnvironmentVariable("SUPERFICIAL_DEBUG") == "1") Err.WriteException(e);
                return 2;
            }
        }, CancellationToken.None);

    // .NET appends " (Parameter 'x')" to ArgumentException messages; users never see parameter names.
    // The library names its parameters as `Name`; users read the flags (FlagNames).
    static string UserMessage(Exception e) => FlagNames.Map(e is ArgumentException { ParamName: { } p } a
        ? a.Message.Replace($" (Parameter '{p}')", "") : e.Message);

    static ProgressMode ParseProgress(string? s) => s switch
    {
        null or "auto" => ProgressMode.Auto,
        "bar" => ProgressMode.Bar,
        "lines" => ProgressMode.Lines,
        "json" => ProgressMode.Json,
        _ => throw new ArgumentException($"--progress {s}: expected auto, bar, lines or json."),
    };

    static bool IsUserError(Exception e) => e is not (OperationCanceledException or NullReferenceException or IndexOutOfRangeException
        or InvalidCastException or StackOverflowException or OutOfMemoryException);

    /// <summary>Prints a warning on standard error (things noticed that did not stop the command).</summary>
    public static void Warn(string message) => Note($"warning: {message}");

    /// <summary>Runs <paramref name="work"/> with one progress display fed by the callback it receives (done, total, note).</summary>
    public static T WithProgress<T>(string stage, Func<Action<double, double, string?>, T> work) =>
        WithProgress(stage, "steps", p => work(p.Report));

    /// <summary>Runs <paramref name="work"/> with one progress display for a stage counted in <paramref name="unit"/>.</summary>
    public static T WithProgress<T>(string stage, string unit, Func<StageProgress, T> work)
    {
        var mode = Progress;
        if (mode == ProgressMode.Auto) mode = Err.Profile.Capabilities.Interactive && !Console.IsErrorRedirected ? ProgressMode.Bar : ProgressMode.Lines;
        if (mode != ProgressMode.Bar)
        {
            var p = new StageProgress(stage, unit, mode == ProgressMode.Json ? StageProgress.JsonLine : StageProgress.TextLine, Err);
            var r = work(p);
            p.Finish();
            return r;
        }
        T result = default!;
        Err.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(stage));
                result = work(new StageProgress(stage, unit, null, Err, (done, total, note) =>
                {
                    task.MaxValue = Math.Max(total, 1e-9);
                    task.Value = Math.Min(done, total);
                    if (note is not null) task.Description = Markup.Escape($"{stage} {note}");
                }));
                task.Value = task.MaxValue;
            });
        return result;
    }
}

/// <summary>
/// Progress of one long stage. Off a terminal it prints a line at most every <see cref="Interval"/> and at the end:
/// time, stage, done/total unit, percent, rate, ETA and a note (or the same as one JSON object per line).
/// </summary>
internal sealed class StageProgress
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    readonly string _stage, _unit;
    readonly Func<StageProgress, string, string?, string>? _format;
    readonly IAnsiConsole _console;
    readonly Action<double, double, string?>? _bar;
    readonly System.Diagnostics.Stopwatch _watch = System.Diagnostics.Stopwatch.StartNew();
    DateTime _lastPrint = DateTime.MinValue;
    double _done, _total, _start = double.NaN;
    string? _note;
    bool _printedFinal;

    internal StageProgress(string stage, string unit, Func<StageProgress, string, string?, string>? format, IAnsiConsole console,
        Action<double, double, string?>? bar = null)
    {
        _stage = stage; _unit = unit; _format = format; _console = console; _bar = bar;
    }

    public void Report(double done, double total, string? note = null)
    {
        lock (this)
        {
            // resumed work is not counted in the rate; a counter that starts again (the next model of a build) restarts the clock
            if (double.IsNaN(_start) || done < _done) { _start = done; _watch.Restart(); _printedFinal = false; }
            _done = done; _total = total; _note = note ?? _note;
            if (_bar is not null) { _bar(done, total, note); return; }
            var final = total > 0 && done >= total;
            if (final && _printedFinal) return;
            if (!final && DateTime.UtcNow - _lastPrint < Interval) return;
            Print("progress");
            _printedFinal = final;
        }
    }

    /// <summary>A milestone of the stage (e.g. an epoch's metrics), in the same stream and format as the progress.</summary>
    public void Event(string message)
    {
        lock (this)
        {
            if (_bar is not null) { Cli.Err.MarkupLine(Markup.Escape($"{_stage}: {message}")); return; }
            _console.WriteLine(_format!(this, "event", message));
        }
    }

    internal void Finish()
    {
        lock (this) if (!_printedFinal && _total > 0 && _bar is null) { _done = _total; Print("progress"); _printedFinal = true; }
    }

    void Print(string kind)
    {
        _lastPrint = DateTime.UtcNow;
        _console.WriteLine(_format!(this, kind, _note));
    }

    double Rate => _watch.Elapsed.TotalSeconds > 0 && !double.IsNaN(_start) ? (_done - _start) / _watch.Elapsed.TotalSeconds : 0;
    double? Eta => Rate > 0 ? (_total - _done) / Rate : null;
    static string Now => DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
    static string Num(double x) => x.ToString(Math.Abs(x - Math.Round(x)) < 1e-9 ? "0" : "0.0#", CultureInfo.InvariantCulture);

    static string Duration(double s) => s >= 3600 ? TimeSpan.FromSeconds(s).ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
        : TimeSpan.FromSeconds(s).ToString(@"m\:ss", CultureInfo.InvariantCulture);

    internal static string TextLine(StageProgress p, string kind, string? note)
    {
        if (kind == "event") return $"{Now} {p._stage}: {note}";
        var pct = p._total > 0 ? 100 * p._done / p._total : 0;
        return $"{Now} {p._stage} {Num(p._done)}/{Num(p._total)} {p._unit} {pct.ToString("0.0", CultureInfo.InvariantCulture)}% " +
               $"{p.Rate.ToString("0.##", CultureInfo.InvariantCulture)} {p._unit}/s ETA {(p.Eta is double e ? Duration(e) : "?")}" +
               (note is null ? "" : $" | {note}");
    }

    internal static string JsonLine(StageProgress p, string kind, string? note)
    {
        var o = new JsonObject { ["time"] = Now, ["stage"] = p._stage, ["kind"] = kind };
        if (kind == "event") o["message"] = note;
        else
        {
            o["done"] = Math.Round(p._done, 4); o["total"] = p._total; o["unit"] = p._unit;
            o["percent"] = p._total > 0 ? Math.Round(100 * p._done / p._total, 2) : 0;
            o["rate_per_s"] = Math.Round(p.Rate, 4);
            o["eta_s"] = p.Eta is double e ? Math.Round(e, 1) : null;
            o["elapsed_s"] = Math.Round(p._watch.Elapsed.TotalSeconds, 1);
            if (note is not null) o["note"] = note;
        }
        return o.ToJsonString();
    }
}
