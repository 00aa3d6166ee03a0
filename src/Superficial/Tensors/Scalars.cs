using TorchSharp;
using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>
/// Scalar arguments that stay alive through libtorch's call. TorchSharp 0.107 turns the 0.5 in <c>x * 0.5</c> (and the
/// alpha = 1 it passes itself in <c>x + y</c>, <c>x.add(y)</c> and <c>arange(n)</c>'s start and step) into a temporary
/// <see cref="Scalar"/>, hands libtorch its native pointer and keeps no reference to it. A garbage collection that
/// another thread starts during the call can then finalize the Scalar and free the native value while libtorch reads
/// it: an error ("Expected false to be true ... toFloat") or a wrong value (dotnet/TorchSharp#1496;
/// <c>bench/Superficial.Bench scalar-race</c> reproduces it in seconds). Every command has such threads (Kestrel in
/// <c>serve</c>, extraction's chunk writer, HTTP judges, the runtime's own), so the code that runs models passes only
/// Scalars that are referenced until the call returns: the rooted constants below, or a <c>using</c> local (these
/// helpers). <c>ScalarLifetimeTests</c> checks that decoding, extraction and scoring leave no Scalar to the finalizer.
/// Each helper computes exactly what the operator it replaces computes (an integer stays an integer Scalar).
/// </summary>
public static class Scalars
{
    /// <summary>Created once and never freed: safe to pass from any thread.</summary>
    public static readonly Scalar Zero = 0.ToScalar(), One = 1.ToScalar(), Two = 2.ToScalar(),
        NegativeInfinity = double.NegativeInfinity.ToScalar();

    /// <summary>a + b (TorchSharp's <c>a + b</c> passes a temporary alpha of 1).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    public static Tensor Plus(this Tensor a, long b) { using var s = b.ToScalar(); return a.add(s, One); }
    public static Tensor Plus(this Tensor a, double b) { using var s = b.ToScalar(); return a.add(s, One); }
    public static Tensor PlusInPlace(this Tensor a, long b) { using var s = b.ToScalar(); return a.add_(s, One); }
    public static Tensor Minus(this Tensor a, long b) { using var s = b.ToScalar(); return a.sub(s); }
    public static Tensor Minus(this Tensor a, double b) { using var s = b.ToScalar(); return a.sub(s); }
    public static Tensor Times(this Tensor a, long b) { using var s = b.ToScalar(); return a.mul(s); }
    public static Tensor Times(this Tensor a, double b) { using var s = b.ToScalar(); return a.mul(s); }
    public static Tensor TimesInPlace(this Tensor a, double b) { using var s = b.ToScalar(); return a.mul_(s); }
    public static Tensor Over(this Tensor a, double b) { using var s = b.ToScalar(); return a.div(s); }
    public static Tensor OverInPlace(this Tensor a, double b) { using var s = b.ToScalar(); return a.div_(s); }
    public static Tensor Greater(this Tensor a, double b) { using var s = b.ToScalar(); return a.gt(s); }
    public static Tensor AtLeast(this Tensor a, double b) { using var s = b.ToScalar(); return a.ge(s); }
    public static Tensor AtMost(this Tensor a, double b) { using var s = b.ToScalar(); return a.le(s); }

    /// <summary>0, 1, ..., stop - 1 as int64.</summary>
    public static Tensor Arange(long stop, Device? device = null) => Arange(0, stop, device);

    /// <summary>start, ..., stop - 1 as int64.</summary>
    public static Tensor Arange(long start, long stop, Device? device = null)
    {
        using Scalar a = start.ToScalar(), b = stop.ToScalar();
        return arange(a, b, One, ScalarType.Int64, device);
    }
}
