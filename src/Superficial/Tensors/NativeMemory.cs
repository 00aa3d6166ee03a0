using System.Runtime.InteropServices;

namespace Superficial.Tensors;

/// <summary>
/// libtorch allocates tensors with malloc. glibc serves large blocks (above a few MB) with fresh mmap calls and
/// returns them to the kernel on free, so a training step that allocates the same large activations every time
/// pays page faults and zeroing for all of them again (a third of the wall time of the organism's larger model
/// was kernel time). Keeping freed memory in the heap lets the next step reuse it, as PyTorch's caching
/// allocators do on GPUs: the price is that resident memory stays at its high-water mark.
/// </summary>
public static partial class NativeMemory
{
    const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int param, int value);

    /// <summary>
    /// Asks glibc to keep freed blocks for reuse; a no-op (returning false) where libc has no mallopt, or
    /// when the environment variable SUPERFICIAL_MALLOC=default asks to leave the allocator alone.
    /// </summary>
    public static bool KeepFreedMemoryForReuse()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("SUPERFICIAL_MALLOC") == "default") return false;
        try
        {
            return Mallopt(M_MMAP_MAX, 0) == 1 & Mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // not glibc (e.g. musl): leave the allocator as it is
        }
    }
}
