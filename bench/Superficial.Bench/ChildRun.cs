using System.Diagnostics;
using System.Text;

namespace Superficial.Bench;

/// <summary>
/// A child process run as a user runs it, with its wall time and its peak resident memory: /proc/PID/status is read
/// every <c>pollMs</c> while it runs. VmHWM is the kernel's own high-water mark of the resident set (so a peak between
/// two reads is still seen, as long as one read comes after it); RSS counts file pages mapped in (memory-mapped
/// weights) as well as anonymous memory, and the largest RssAnon and RssFile seen are kept to tell them apart.
/// </summary>
public static class ChildRun
{
    public sealed record Result(int ExitCode, double Seconds, long PeakRssBytes, long MaxAnonBytes, long MaxFileBytes, int Samples, string Stdout, string Stderr);

    public static Result Run(string exe, IEnumerable<string> args, Action<string>? echo = null, int pollMs = 50)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {exe}");
        p.OutputDataReceived += (_, e) => { if (e.Data is null) return; lock (stdout) stdout.AppendLine(e.Data); echo?.Invoke(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is null) return; lock (stderr) stderr.AppendLine(e.Data); echo?.Invoke(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        long hwm = 0, anon = 0, file = 0;
        int samples = 0;
        var status = $"/proc/{p.Id}/status";
        while (!p.WaitForExit(pollMs))
        {
            if (Read(status) is not { } s) continue;
            hwm = Math.Max(hwm, Math.Max(s.Hwm, s.Rss));
            anon = Math.Max(anon, s.Anon);
            file = Math.Max(file, s.File);
            samples++;
        }
        p.WaitForExit();
        double seconds = watch.Elapsed.TotalSeconds;
        return new Result(p.ExitCode, seconds, hwm, anon, file, samples, stdout.ToString(), stderr.ToString());
    }

    readonly record struct Status(long Hwm, long Rss, long Anon, long File);

    /// <summary>The memory fields of /proc/PID/status in bytes; null once the process is gone (or a zombie without them).</summary>
    static Status? Read(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        long Field(string name)
        {
            foreach (var l in lines)
                if (l.StartsWith(name + ":", StringComparison.Ordinal))
                    return long.Parse(l[(name.Length + 1)..].Trim().Split(' ')[0]) * 1024;
            return -1;
        }
        var hwm = Field("VmHWM");
        return hwm < 0 ? null : new Status(hwm, Field("VmRSS"), Field("RssAnon"), Field("RssFile"));
    }
}
