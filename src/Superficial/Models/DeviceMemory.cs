using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Free memory of a device: the CUDA runtime's cudaMemGetInfo for cuda:N, MemAvailable (/proc/meminfo) for the CPU.
/// The CUDA branch runs only in the CUDA build (TorchSharp-cuda loads the CUDA runtime); it has not been exercised here.
/// </summary>
public static partial class DeviceMemory
{
    /// <summary>Share of the free memory a run takes as its budget when none is given (the rest for the system, the runtime, fragmentation).</summary>
    public const double DefaultShare = 0.9;

    /// <summary>
    /// The devices loaded models live on: the list of a split (--device cuda:0,cuda:1 or auto), else libtorch's default
    /// device (--device cuda:N sets it), else the CPU.
    /// </summary>
    public static IReadOnlyList<string> ModelDevices()
    {
        if (ModelLoader.SplitAcross is { } map) return map.Devices;
        var d = get_default_device();
        return [d.type == TorchSharp.DeviceType.CPU ? "cpu" : $"{d.type.ToString().ToLowerInvariant()}:{Math.Max(0, d.index)}"];
    }

    /// <summary>
    /// The memory budget of a run whose models live on <paramref name="devices"/>: <see cref="DefaultShare"/> of their free
    /// memory, summed over the devices of a split (each holds its share of the layers). The weights, KV cache and
    /// activations sit on those devices, so on CUDA it is the device's free memory, not the host's MemAvailable.
    /// </summary>
    /// <param name="free">Free bytes of a device (default <see cref="FreeBytes"/>; tests give capacities).</param>
    public static (long Bytes, string From) DefaultBudget(IReadOnlyList<string> devices, Func<string, long>? free = null)
    {
        free ??= FreeBytes;
        long total = devices.Sum(free);
        var names = devices.Count == 1 ? devices[0] == "cpu" ? "the available memory" : $"{devices[0]}'s free memory"
            : $"the free memory of {string.Join(" + ", devices)}";
        return ((long)(total * DefaultShare), $"{DefaultShare:P0} of {names}");
    }

    public static long FreeBytes(string device)
    {
        if (device == "cpu") return CpuAvailable();
        var index = device.StartsWith("cuda:") ? int.Parse(device["cuda:".Length..]) : 0;
        foreach (var lib in new[] { "libcudart.so", "libcudart.so.12", "libcudart.so.11.0", "cudart64_12" })
        {
            if (!NativeLibrary.TryLoad(lib, out var h)) continue;
            try
            {
                unsafe
                {
                    var getDevice = (delegate* unmanaged[Cdecl]<int*, int>)NativeLibrary.GetExport(h, "cudaGetDevice");
                    var setDevice = (delegate* unmanaged[Cdecl]<int, int>)NativeLibrary.GetExport(h, "cudaSetDevice");
                    var memInfo = (delegate* unmanaged[Cdecl]<nuint*, nuint*, int>)NativeLibrary.GetExport(h, "cudaMemGetInfo");
                    int current;
                    if (getDevice(&current) != 0 || setDevice(index) != 0) continue;
                    nuint free, total;
                    int rc = memInfo(&free, &total);
                    setDevice(current);
                    if (rc == 0) return (long)free;
                }
            }
            catch (EntryPointNotFoundException) { }
        }
        throw new InvalidOperationException($"--device auto: cannot read the free memory of {device} (no CUDA runtime library found); list the devices explicitly, e.g. --device cuda:0,cuda:1.");
    }

    static long CpuAvailable()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith("MemAvailable:"))
                return long.Parse(line["MemAvailable:".Length..].Trim().Split(' ')[0]) * 1024;
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
