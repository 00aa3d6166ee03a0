using System.Diagnostics;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Bench;

/// <summary>
/// Cost of the model identity over every weight byte, against the limit measured in the same run: reading the
/// same file sequentially without hashing. Also the cost once the per-file hash is cached.
///   dotnet bench/Superficial.Bench/bin/Release/net10.0/Superficial.Bench.dll identity [FOLDER] [--gb 1]
/// </summary>
internal static class IdentityBench
{
    public static void Run(string? folder, double gb)
    {
        folder ??= Path.Combine(Path.GetTempPath(), $"superficial-identity-bench-{gb:0.##}gb");
        var file = Path.Combine(folder, "model.safetensors");
        if (!File.Exists(file))
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "config.json"), "{\"model_type\": \"llama\"}");
            long n = (long)(gb * (1L << 30) / 4);
            using var t = rand(n);
            SafeTensorsWriter.Write(file, [KeyValuePair.Create("w", t)]);
        }
        double size = new FileInfo(file).Length / 1e9;
        Environment.SetEnvironmentVariable("SUPERFICIAL_HASH_CACHE", Path.Combine(folder, "hash-cache"));
        if (Directory.Exists(Path.Combine(folder, "hash-cache"))) Directory.Delete(Path.Combine(folder, "hash-cache"), true);

        double read = Measure.Seconds(() => ReadAll(file));
        double hash = Measure.Seconds(() => ModelIdentity.HashFile(file));
        var w = Stopwatch.StartNew();
        ModelIdentity.Of(folder); // first call hashes and caches
        double first = w.Elapsed.TotalSeconds;
        double cached = Measure.Seconds(() => ModelIdentity.Of(folder), reps: 5);
        Console.WriteLine($"identity of a {size:0.00} GB checkpoint ({file}), page cache warm:");
        Console.WriteLine($"  sequential read, no hash (the limit): {read:0.000} s = {size / read:0.00} GB/s");
        Console.WriteLine($"  XxHash128 over every byte:           {hash:0.000} s = {size / hash:0.00} GB/s ({read / hash:P0} of the read limit)");
        Console.WriteLine($"  ModelIdentity.Of, first call:         {first:0.000} s; cached call: {cached * 1000:0.0} ms");
    }

    static void ReadAll(string file)
    {
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var buffer = new byte[4 << 20];
        while (fs.Read(buffer, 0, buffer.Length) > 0) { }
    }
}
