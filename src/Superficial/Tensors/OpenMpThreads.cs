using System.Runtime.InteropServices;

namespace Superficial.Tensors;

/// <summary>
/// libtorch's CPU threads are GNU OpenMP threads, which by default spin for a while after every parallel region before
/// they sleep. <see cref="SkinnyLinear"/> runs its own threads between libtorch's operations, and on a machine with as
/// many threads as cores they then compete with the spinning ones: with two threads on two cores a decoding step took
/// 21.6 ms instead of 7.6 ms with OMP_WAIT_POLICY=PASSIVE (bench roofline; the organism's training steps took the same
/// time either way). libgomp reads the variable once, when libtorch loads, so it is set at the start of the process,
/// before any tensor exists; a value the user set is kept.
/// </summary>
public static partial class OpenMpThreads
{
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetEnv(string name);

    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE unless the environment already names a policy; call before the first use of
    /// TorchSharp. Returns whether OpenMP threads will sleep when idle (PASSIVE), as far as the variable says.
    /// </summary>
    public static bool SleepWhenIdle()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            SetEnv("OMP_WAIT_POLICY", "PASSIVE", overwrite: 0);
            idleThreadsSleep = null;
            return IdleThreadsSleep;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>
    /// Whether the process's OMP_WAIT_POLICY is PASSIVE (read from the native environment once). Only then does
    /// <see cref="SkinnyLinear"/> split a call over several threads; otherwise it keeps to the calling thread.
    /// </summary>
    public static bool IdleThreadsSleep => idleThreadsSleep ??= ReadPolicy();

    static bool? idleThreadsSleep;

    static bool ReadPolicy()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            var p = GetEnv("OMP_WAIT_POLICY");
            return p != IntPtr.Zero && string.Equals(Marshal.PtrToStringUTF8(p), "PASSIVE", StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}
