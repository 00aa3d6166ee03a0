using System.Runtime.InteropServices;

namespace Superficial.Models;

/// <summary>
/// Free memory of a device: the CUDA runtime's cudaMemGetInfo for cuda:N, MemAvailable (/proc/meminfo) for the CPU.
/// The CUDA branch runs only in the CUDA build (TorchSharp-cuda loads the CUDA runtime); it has not been exercised here.
/// </summary>
public static partial class DeviceMemory
{
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
