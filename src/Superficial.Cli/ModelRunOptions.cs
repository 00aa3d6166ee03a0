using System.CommandLine;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Cli;

/// <summary>The settings a command that runs a model reads, once parsed and checked.</summary>
public sealed record ModelRunSettings(string Device, ScalarType? Dtype, int? Threads, long Seed)
{
    /// <summary>As recorded in output manifests and summaries.</summary>
    public IReadOnlyDictionary<string, object?> Describe() => new Dictionary<string, object?>
    {
        ["device"] = Device, ["dtype"] = Dtype is { } d ? ModelRunOptions.DtypeName(d) : "checkpoint (float32 on CPU)",
        ["threads"] = Threads ?? get_num_threads(), ["seed"] = Seed,
    };
}

/// <summary>
/// The options every command that runs a model shares: --device, --dtype, --threads, --seed. Defined here
/// once; a command adds them with <see cref="AddTo"/> and reads them with <see cref="Read"/>, which also
/// applies the thread count and checks the device before any model is loaded.
/// </summary>
public sealed class ModelRunOptions
{
    public const string ThreadsVariable = "SUPERFICIAL_THREADS";
    public const string DtypeHelp = "Compute dtype: float32 (default on CPU), bfloat16 or float16.";

    public readonly Option<string> Device = Cli.Opt("--device",
        "cpu, cuda / cuda:N, a list such as cuda:0,cuda:1 (the layers split across them by free memory), or auto (every CUDA device; " +
        "CUDA needs the CUDA build: TORCH_BACKEND=cuda scripts/setup).", defaultValue: () => "cpu");
    public readonly Option<string?>? Dtype;
    public readonly Option<int?> Threads = Cli.Opt<int?>("--threads", $"CPU threads libtorch uses (default: all cores, or {ThreadsVariable}).");
    public readonly Option<long>? Seed;

    /// <param name="seedDefault">The command's default seed.</param>
    /// <param name="seedHelp">What the seed drives in this command; null when the command defines its own --seed.</param>
    /// <param name="dtypeHelp">What --dtype sets in this command; null when it computes in one fixed dtype.</param>
    public ModelRunOptions(long seedDefault = 0, string? seedHelp = "Seed for everything random in this command.",
        string? dtypeHelp = DtypeHelp)
    {
        if (seedHelp is not null) Seed = Cli.Opt("--seed", seedHelp, defaultValue: () => seedDefault);
        if (dtypeHelp is not null) Dtype = Cli.Opt<string?>("--dtype", dtypeHelp);
    }

    public void AddTo(Command c)
    {
        foreach (var o in new Option?[] { Device, Dtype, Threads, Seed }) if (o is not null) c.Options.Add(o);
    }

    /// <summary>Parses and checks the options, sets libtorch's thread count and default device.</summary>
    public ModelRunSettings Read(ParseResult p)
    {
        var device = CheckDevice(p.GetValue(Device)!);
        var threads = p.GetValue(Threads);
        if (threads is < 1) throw new ArgumentException($"--threads {threads}: expected at least 1.");
        if (threads is int t) set_num_threads(t);
        var devices = device.Split(',');
        if (devices.Length > 1) ModelLoader.SplitAcross = new DeviceMap(devices, ByFreeMemory: p.GetValue(Device)!.Trim().ToLowerInvariant() == "auto");
        else if (device != "cpu") set_default_device(new TorchSharp.torch.Device(device));
        return new ModelRunSettings(device, Dtype is null ? null : ParseDtype(p.GetValue(Dtype)), threads, Seed is null ? 0 : p.GetValue(Seed));
    }

    /// <summary>Applies SUPERFICIAL_THREADS (if set) at start-up; --threads overrides it.</summary>
    public static void ApplyThreadsVariable()
    {
        var v = Environment.GetEnvironmentVariable(ThreadsVariable);
        if (string.IsNullOrEmpty(v)) return;
        if (!int.TryParse(v, out var n) || n < 1) throw new ArgumentException($"{ThreadsVariable}={v}: expected a whole number of threads, at least 1.");
        set_num_threads(n);
    }

    /// <summary>
    /// cpu, cuda or cuda:N, a comma-separated list of those (a model split across them), or auto (every CUDA device, or
    /// cpu where there is none); CUDA devices must exist in this build. Returns the canonical form, e.g. "cuda:0,cuda:1".
    /// </summary>
    public static string CheckDevice(string s)
    {
        s = s.Trim().ToLowerInvariant();
        if (s == "auto")
            return cuda.is_available() ? string.Join(',', Enumerable.Range(0, cuda.device_count()).Select(i => $"cuda:{i}")) : "cpu";
        if (s.Contains(','))
        {
            var list = s.Split(',', StringSplitOptions.TrimEntries).Select(d => d.Length == 0 || d.Contains(',')
                ? throw new ArgumentException($"--device {s}: an empty entry in the list.") : CheckDevice(d)).ToArray();
            return string.Join(',', list);
        }
        if (s == "cpu") return s;
        var m = System.Text.RegularExpressions.Regex.Match(s, @"^cuda(?::(\d+))?$");
        if (!m.Success) throw new ArgumentException($"--device {s}: expected cpu, cuda, cuda:N, a comma-separated list of them, or auto.");
        if (!cuda.is_available())
            throw new ArgumentException($"--device {s}: this build of superficial has no CUDA (it uses TorchSharp-cpu); " +
                                        "rebuild with TORCH_BACKEND=cuda scripts/setup on a machine with an NVIDIA driver, or use --device cpu.");
        var index = m.Groups[1].Success ? int.Parse(m.Groups[1].Value) : 0;
        if (index >= cuda.device_count())
            throw new ArgumentException($"--device {s}: there are {cuda.device_count()} CUDA device(s) (cuda:0 to cuda:{cuda.device_count() - 1}).");
        return $"cuda:{index}";
    }

    public static ScalarType? ParseDtype(string? s) => s switch
    {
        null => null,
        "float32" or "f32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "f16" or "fp16" => ScalarType.Float16,
        _ => throw new ArgumentException($"--dtype {s}: expected float32, bfloat16 or float16."),
    };

    public static string DtypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32", ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => t.ToString().ToLowerInvariant(),
    };
}
