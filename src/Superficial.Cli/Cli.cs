using System.CommandLine;
using Spectre.Console;

namespace Superficial.Cli;

/// <summary>Shared command-line plumbing: option construction, error reporting, progress display.</summary>
internal static class Cli
{
    public static Option<T> Opt<T>(string name, string description, bool required = false, Func<T>? defaultValue = null)
    {
        var o = new Option<T>(name) { Description = description, Required = required };
        if (defaultValue is not null) o.DefaultValueFactory = _ => defaultValue();
        return o;
    }

    /// <summary>Commands that shut down gracefully on SIGTERM by themselves.</summary>
    public static readonly HashSet<Command> DrainOnTermination = [];

    /// <summary>Runs the parsed command. Expected failures (bad input, missing files) print one clear line, not a stack trace.</summary>
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
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
            AnsiConsole.MarkupLine("[yellow]Interrupted. Completed work is on disk; run the same command again to resume.[/]");
            return 130;
        }
    }

    /// <summary>Wraps a command body: user-facing errors become a red message and exit code 2.</summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Action(Func<ParseResult, CancellationToken, int> body) =>
        (parse, ct) => Task.Run(() =>
        {
            try { return body(parse, ct); }
            catch (Exception e) when (IsUserError(e))
            {
                AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
                if (Environment.GetEnvironmentVariable("SUPERFICIAL_DEBUG") == "1") AnsiConsole.WriteException(e);
                return 2;
            }
        }, CancellationToken.None);

    static bool IsUserError(Exception e) => e is not (OperationCanceledException or NullReferenceException or IndexOutOfRangeException
        or InvalidCastException or StackOverflowException or OutOfMemoryException);

    /// <summary>Runs <paramref name="work"/> with one Spectre progress bar fed by the callback it receives.</summary>
    public static T WithProgress<T>(string title, Func<Action<double, double, string?>, T> work)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            var last = DateTime.MinValue;
            return work((done, total, note) =>
            {
                if ((DateTime.UtcNow - last).TotalSeconds < 5 && done < total) return;
                last = DateTime.UtcNow;
                Console.Error.WriteLine($"{title}: {done:0}/{total:0} {note}");
            });
        }
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title));
                result = work((done, total, note) =>
                {
                    task.MaxValue = Math.Max(total, 1e-9);
                    task.Value = Math.Min(done, total);
                    if (note is not null) task.Description = Markup.Escape($"{title} {note}");
                });
                task.Value = task.MaxValue;
            });
        return result;
    }
}
