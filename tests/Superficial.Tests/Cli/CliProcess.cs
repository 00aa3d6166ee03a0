using System.Diagnostics;

namespace Superficial.Tests.Cli;

/// <summary>What one run of the command-line program gave: exit code, standard output and standard error.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Everything the program printed: standard output, then standard error.</summary>
    public string Output => Stdout + Stderr;

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the `superficial` program as a user does: a separate process (the built Superficial.Cli.dll under
/// `dotnet`), stdout and stderr redirected (so, as in a log file or CI, not a terminal).
/// </summary>
public static class CliProcess
{
    static string Dll => Path.Combine(AppContext.BaseDirectory, "Superficial.Cli.dll");

    public static CliResult Run(IEnumerable<string> args, string? workDir = null, IDictionary<string, string>? env = null, int timeoutSeconds = 300)
        => RunAsync(args, workDir, env, timeoutSeconds).GetAwaiter().GetResult();

    /// <summary>Starts the program without waiting (for tests that run several at once).</summary>
    public static async Task<CliResult> RunAsync(IEnumerable<string> args, string? workDir = null, IDictionary<string, string>? env = null, int timeoutSeconds = 300)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // one libtorch thread, as in-process tests use: tiny models, shared 2-core machines
        psi.Environment["SUPERFICIAL_THREADS"] = "1";
        psi.Environment.Remove("SUPERFICIAL_JUDGE_MODEL");
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"superficial {string.Join(' ', args)} ran over {timeoutSeconds} s");
        }
        return new CliResult(p.ExitCode, await stdout, await stderr);
    }

    public static CliResult Run(params string[] args) => Run((IEnumerable<string>)args);

    /// <summary>Runs and asserts exit code 0, showing everything the program wrote when it is not.</summary>
    public static CliResult Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == 0, $"superficial {string.Join(' ', args)}\n{r}");
        return r;
    }
}
