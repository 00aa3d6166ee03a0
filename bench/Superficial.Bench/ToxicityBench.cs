using System.Diagnostics;
using Superficial.Evaluation.Tasks;
using Superficial.Evaluation.Toxicity;

namespace Superficial.Bench;

/// <summary>
/// Time and memory per 1,000 toxicity labels: the encoder labeller (all-MiniLM-L6-v2 + logistic regression)
/// against the n-gram labeller in the same run, on real ToxiGen evaluation prompts (about 100 word pieces each:
/// the length of a short continuation) and on long texts truncated to the encoder's 256 word pieces. Training
/// happens once, in a cache under the system's temporary folder, before anything is timed.
/// </summary>
internal static class ToxicityBench
{
    static string Data => Path.Combine(Environment.GetEnvironmentVariable("SUPERFICIAL_SHARED") is { Length: > 0 } s ? s
        : Directory.Exists("/work/shared") ? "/work/shared" : Path.GetFullPath("../shared"), "data");

    public static void Run(bool quick)
    {
        int n = quick ? 100 : 1000;
        var cache = Path.Combine(Path.GetTempPath(), "superficial-bench-cache");
        long rssBefore = Measure.StatusKb("VmRSS");
        var load = Stopwatch.StartNew();
        using var encoder = new MiniLmEncoder();
        using var labeller = EncoderToxicityClassifier.LoadOrTrain(Data, Path.Combine(cache, "toxicity-encoder"), encoder, log: Console.WriteLine);
        load.Stop();
        long rssLoaded = Measure.StatusKb("VmRSS");
        using var ngram = ToxicityClassifier.LoadOrTrain(Data, Path.Combine(cache, "toxicity-classifier"));
        Console.WriteLine($"toxicity: encoder labeller ready in {load.Elapsed.TotalSeconds:0.0} s ({(labeller.LoadedFromCache ? "cached weights" : "trained now")}); " +
                          $"resident memory +{(rssLoaded - rssBefore) / 1024.0:0} MiB for model and session");

        var prompts = ToxiGenData.Load(Data, extraction: false).Select(p => p.Text).Take(n).ToArray();
        var longTexts = prompts.Select(p => string.Concat(Enumerable.Repeat(p + " ", 4))).ToArray();
        foreach (var (name, texts) in new[] { ("prompt-length texts", prompts), ("long texts (256 word pieces)", longTexts) })
        {
            double tokens = texts.Average(t => encoder.Tokenize(t).Length);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var w = Stopwatch.StartNew();
            int toxic = labeller.LabelMany(texts).Count(l => l.Toxic);
            double encSeconds = w.Elapsed.TotalSeconds;
            double encCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            w.Restart();
            foreach (var t in texts.Take(Math.Min(texts.Length, 50))) labeller.Label(t);
            double singleSeconds = w.Elapsed.TotalSeconds / Math.Min(texts.Length, 50) * texts.Length;
            w.Restart();
            ngram.LabelMany(texts);
            double ngramSeconds = w.Elapsed.TotalSeconds;
            double per1000 = encSeconds / texts.Length * 1000;
            Console.WriteLine($"toxicity, {name} (mean {tokens:0} word pieces), {texts.Length} labels: encoder batched {per1000:0.0} s per 1,000 ({encCpu / texts.Length * 1000:0.0} CPU s) " +
                              $"(one at a time {singleSeconds / texts.Length * 1000:0.0} s), n-gram {ngramSeconds / texts.Length * 1000:0.00} s per 1,000 " +
                              $"(encoder/n-gram {encSeconds / Math.Max(ngramSeconds, 1e-9):0}x); {toxic} labelled toxic");
        }
        Console.WriteLine($"toxicity: peak resident memory of this process {Measure.StatusKb("VmHWM") / 1024.0:0} MiB");
    }
}
