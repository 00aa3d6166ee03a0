using System.Diagnostics;

namespace Superficial.Tests;

/// <summary>What a run of the `superficial` command did: its exit code and everything it printed.</summary>
public sealed record CliResult(int ExitCode, string Output)
{
    public override string ToString() => $"exit {ExitCode}:\n{Output}";
}

/// <summary>Runs the `superficial` command as a user does: a separate process (the CLI built beside the tests).</summary>
public static class CliProcess
{
    static string Dll => Path.Combine(AppContext.BaseDirectory, "Superficial.Cli.dll");

    public static CliResult Run(params string[] args) => RunAsync(args).GetAwaiter().GetResult();

    /// <summary>Starts the command without waiting (for tests that run several at once).</summary>
    public static async Task<CliResult> RunAsync(string[] args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["COLUMNS"] = "200";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"superficial {string.Join(' ', args)} did not finish in time.");
        }
        return new CliResult(p.ExitCode, await stdout + await stderr);
    }
}
