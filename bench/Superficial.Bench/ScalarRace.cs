using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// Whether this TorchSharp keeps a temporary Scalar alive through its native call (see DemoCommand.OneTorchThread): one
/// thread adds a scalar to a tensor and checks the result, another only allocates managed garbage (so garbage
/// collections happen while the first is inside libtorch), for the given seconds; then the same without the
/// allocating thread. With TorchSharp 0.107 the first run fails within a second ("Expected false to be true ...
/// toFloat", a freed Scalar read by libtorch) and the second passes.
///   dotnet run -c Release --project bench/Superficial.Bench -- scalar-race [--seconds 20]
/// </summary>
internal static class ScalarRace
{
    public static int Run(string[] args)
    {
        int at = Array.IndexOf(args, "--seconds");
        int seconds = at >= 0 ? int.Parse(args[at + 1]) : 20;
        bool failed = false;
        foreach (bool allocate in new[] { true, false })
        {
            var (ops, wrong, error) = Race(seconds, allocate);
            failed |= error is not null || wrong > 0;
            Console.WriteLine($"{(allocate ? "beside a thread that allocates" : "alone (the other thread spins)"),-32} " +
                              $"{ops,10} additions, {wrong} wrong results, {(error is null ? "no error" : "failed: " + error.Split('\n')[0])}");
        }
        return failed ? 1 : 0;
    }

    static (long ops, long wrong, string? error) Race(int seconds, bool allocate)
    {
        using var x = zeros(4);
        long ops = 0, wrong = 0;
        string? error = null;
        var stop = DateTime.UtcNow.AddSeconds(seconds);
        var other = new Thread(() =>
        {
            var r = new Random(1);
            object? keep = null;
            while (DateTime.UtcNow < stop && error is null)
                if (allocate) keep = new byte[r.Next(100, 20000)];
                else Thread.SpinWait(1000);
            GC.KeepAlive(keep);
        });
        other.Start();
        try
        {
            while (DateTime.UtcNow < stop)
            {
                using var y = x.add(1.5);
                if (y[0].item<float>() != 1.5f) wrong++;
                ops++;
            }
        }
        catch (Exception e) { error = e.Message; }
        other.Join();
        return (ops, wrong, error);
    }
}
