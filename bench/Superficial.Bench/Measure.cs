using System.Diagnostics;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>Timing helpers and the machine's F32 matmul peak, measured in the same process.</summary>
internal static class Measure
{
    static readonly Process Proc = Process.GetCurrentProcess();

    /// <summary>This process's CPU seconds: with --threads 1 the work done, which other processes' load barely changes.</summary>
    public static double CpuSeconds() { Proc.Refresh(); return Proc.TotalProcessorTime.TotalSeconds; }

    /// <summary>Best-of-n GFLOP/s of a 2048^3 F32 matmul (after warm-up).</summary>
    public static double MatmulPeakGflops(int n = 2048, int reps = 5)
    {
        using var a = randn(n, n);
        using var b = randn(n, n);
        for (int i = 0; i < 2; i++) a.matmul(b).Dispose();
        double best = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            var w = Stopwatch.StartNew();
            a.matmul(b).Dispose();
            best = Math.Min(best, w.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    /// <summary>Median seconds of <paramref name="reps"/> runs after <paramref name="warmup"/> warm-up runs.</summary>
    public static double Seconds(Action run, int reps = 3, int warmup = 1)
    {
        for (int i = 0; i < warmup; i++) run();
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            var w = Stopwatch.StartNew();
            run();
            times.Add(w.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Reads a field (kB) of /proc/self/status, e.g. VmHWM, RssAnon.</summary>
    public static long StatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":"))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0]);
        return -1;
    }
}
