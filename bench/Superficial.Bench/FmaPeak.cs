using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Superficial.Bench;

/// <summary>
/// The core's F32 multiply-add peak at 8 lanes (AVX2 FMA) and 16 lanes (AVX-512): 10 independent accumulator chains,
/// enough to cover the FMA latency on both ports, timed outside the loop (a call inside it would make the JIT keep
/// the chains on the stack). The roofline's compute bound is the higher of this and libtorch's GEMM: libtorch's F32
/// GEMM on this project's AMD machines runs 8-lane code (84 GFLOP/s) where the core executes 16 lanes (about 205).
/// </summary>
internal static class FmaPeak
{
    public static double Gflops(bool wide, long iterations = 100_000_000)
    {
        double best = 0;
        for (int r = 0; r < 3; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            float sink = wide ? Chains16(iterations) : Chains8(iterations);
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            if (sink == 42) Console.Write("");
            best = Math.Max(best, iterations * 10.0 * (wide ? 16 : 8) * 2 / s / 1e9);
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static float Chains8(long n)
    {
        Vector256<float> a0 = Vector256.Create(1.00f), a1 = Vector256.Create(1.01f), a2 = Vector256.Create(1.02f), a3 = Vector256.Create(1.03f), a4 = Vector256.Create(1.04f);
        Vector256<float> a5 = Vector256.Create(1.05f), a6 = Vector256.Create(1.06f), a7 = Vector256.Create(1.07f), a8 = Vector256.Create(1.08f), a9 = Vector256.Create(1.09f);
        var m = Vector256.Create(0.9999f);
        var c = Vector256.Create(0.0001f);
        for (long i = 0; i < n; i++)
        {
            a0 = Fma.MultiplyAdd(a0, m, c); a1 = Fma.MultiplyAdd(a1, m, c); a2 = Fma.MultiplyAdd(a2, m, c); a3 = Fma.MultiplyAdd(a3, m, c); a4 = Fma.MultiplyAdd(a4, m, c);
            a5 = Fma.MultiplyAdd(a5, m, c); a6 = Fma.MultiplyAdd(a6, m, c); a7 = Fma.MultiplyAdd(a7, m, c); a8 = Fma.MultiplyAdd(a8, m, c); a9 = Fma.MultiplyAdd(a9, m, c);
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static float Chains16(long n)
    {
        Vector512<float> a0 = Vector512.Create(1.00f), a1 = Vector512.Create(1.01f), a2 = Vector512.Create(1.02f), a3 = Vector512.Create(1.03f), a4 = Vector512.Create(1.04f);
        Vector512<float> a5 = Vector512.Create(1.05f), a6 = Vector512.Create(1.06f), a7 = Vector512.Create(1.07f), a8 = Vector512.Create(1.08f), a9 = Vector512.Create(1.09f);
        var m = Vector512.Create(0.9999f);
        var c = Vector512.Create(0.0001f);
        for (long i = 0; i < n; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c); a1 = Avx512F.FusedMultiplyAdd(a1, m, c); a2 = Avx512F.FusedMultiplyAdd(a2, m, c); a3 = Avx512F.FusedMultiplyAdd(a3, m, c); a4 = Avx512F.FusedMultiplyAdd(a4, m, c);
            a5 = Avx512F.FusedMultiplyAdd(a5, m, c); a6 = Avx512F.FusedMultiplyAdd(a6, m, c); a7 = Avx512F.FusedMultiplyAdd(a7, m, c); a8 = Avx512F.FusedMultiplyAdd(a8, m, c); a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).ToScalar();
    }
}
