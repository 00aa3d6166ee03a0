using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>
/// y = x Wᵀ + b for the few rows of a decoding step, on an x86 CPU with AVX2 and FMA: F32 up to <see cref="MaxRows"/>
/// rows, BF16 up to <see cref="MaxRowsBf16"/> (any count on a CPU without BF16 instructions, where libtorch's BF16 GEMM is
/// about 10x slower than its F32). libtorch's F32 GEMM reads W at 12-17 GB/s for one row and reaches 37-45
/// GFLOP/s at 16 rows on this project's machines, where this kernel reads W for one row at 26-30 GB/s, close to a
/// plain read of the same bytes (one thread), and computes 8-64 rows of the LM head at 85-100 GFLOP/s with 8-lane
/// tiles, up to 150 with 16-lane ones (<see cref="Wide"/>); for BF16 weights at one row it reads the LM head 1.7x
/// faster (bench: <c>gemv-variants [--bf16]</c>, <c>lane-variants</c>). Where its tiles are 16 lanes wide and
/// libtorch's GEMM is not (<see cref="ManyRows"/>), F32 products of any row count (prefill) come here too. Everything
/// else (training's gradients, GPUs, other CPUs) stays with libtorch: <see cref="TryForward"/> returns null there.
/// <para>
/// How: W [n, k] row-major is read in tiles of 4 rows; each tile is multiplied with 1-3 rows of x at a time (1-4 with
/// 16 lanes), one F32 accumulator per (W row, x row) pair, and the lanes are summed in one fixed order. So every
/// output element is computed by the same operations whatever the batch, the tile or the thread split: a row's result
/// does not depend on the rows decoded beside it, bit for bit (tested). W rows are walked in blocks that stay in L2
/// while each group of x rows (at most 16 with 8-lane tiles, 8 with 16-lane ones) passes over them, and the first
/// group prefetches the next tile while it computes, so at a few rows the weights stream from memory once and at more rows the arithmetic runs from cache. A
/// single x row (batch-1 decoding) instead walks W one row at a time, in memory order: one stream, which the CPU's
/// prefetchers follow better than a tile's four (1.25-1.4x, F32 and BF16), with whole-line loads where W's rows start
/// mid-line (<see cref="Walk16Shifted{TW}"/>). BF16 weights are widened to F32 as they are read.
/// </para>
/// Threads: as many as libtorch uses on the calling thread (<c>--threads</c>), each taking a contiguous range of W
/// rows, on dedicated threads that allocate nothing (see <see cref="KernelThreads"/>); only where libtorch's idle
/// OpenMP threads sleep instead of spinning (<see cref="OpenMpThreads"/>), else one. Setting the environment
/// variable SUPERFICIAL_LINEAR=libtorch turns the kernel off (for comparisons).
/// </summary>
public static unsafe class SkinnyLinear
{
    /// <summary>The most rows (the product of x's leading dimensions) the kernel takes in F32; more go to libtorch's GEMM.</summary>
    public const int MaxRows = 64;

    /// <summary>
    /// The most rows one call takes in BF16 where the step's few rows should come here: 4 where libtorch has BF16
    /// instructions (<see cref="NativeBf16"/>), since its GEMM then wins from a few rows on while this kernel widens BF16
    /// to F32 and is faster only where the weights' bytes are the limit (gemv-variants --bf16); else <see cref="MaxRows"/>,
    /// and prefill-sized BF16 products come here too, <see cref="MaxRows"/> rows at a time.
    /// </summary>
    public static int MaxRowsBf16 => NativeBf16 ? 4 : MaxRows;

    /// <summary>
    /// Whether the CPU has BF16 dot-product instructions (AVX512-BF16 or AMX-BF16), which libtorch's BF16 GEMM needs to
    /// be fast. Without them (AVX2 CPUs such as AMD's Zen 2-3) it runs at about 8 GFLOP/s on an EPYC Zen 3 core at
    /// the bench model's shapes, 4-1024 rows (0.3 at 2048^3), against 70-80 in F32. There this kernel takes BF16
    /// products of any row count, widening the weights to F32 as it reads them (50-60 GFLOP/s at 16-1024 rows): BF16
    /// extraction on the bench pair took 0.19-0.23x the time. Settable for tests.
    /// </summary>
    public static bool NativeBf16 { get; set; } = HasBf16Instructions();

    static bool HasBf16Instructions()
    {
        if (!X86Base.IsSupported || X86Base.CpuId(0, 0).Eax < 7) return false;
        bool amx = (X86Base.CpuId(7, 0).Edx & (1 << 22)) != 0;                  // AMX-BF16
        bool avx512 = (X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0 && Avx512F.IsSupported;   // AVX512-BF16, with the OS's AVX-512 state
        return amx || avx512;
    }

    /// <summary>Whether the kernel is used: AVX2 and FMA present and not turned off by SUPERFICIAL_LINEAR=libtorch.</summary>
    public static bool Enabled { get; set; } = Avx2.IsSupported && Fma.IsSupported &&
        Environment.GetEnvironmentVariable("SUPERFICIAL_LINEAR") != "libtorch";

    /// <summary>
    /// Whether tiles use 16-lane vectors (AVX-512) on W whose rows are a multiple of 16 long: where the CPU executes
    /// them at full width (this project's machines: 2 x 16-lane FMAs per cycle, 205 GFLOP/s on one core against 102
    /// with 8 lanes), products of 8-64 rows run 1.04-1.7x as fast (<c>lane-variants</c>). A matrix's results then differ from the
    /// 8-lane tiles' in the order its lanes are summed, never with the batch. SUPERFICIAL_LINEAR=avx2 keeps 8 lanes.
    /// </summary>
    public static bool Wide { get; set; } = Avx512F.IsSupported && Avx512BW.IsSupported &&
        Environment.GetEnvironmentVariable("SUPERFICIAL_LINEAR") != "avx2";

    /// <summary>
    /// Whether F32 products of more than <see cref="MaxRows"/> rows (a prompt's prefill, the base model's teacher-forced
    /// forward, a scored continuation) also go to the kernel, <see cref="MaxRows"/> rows at a time: where its tiles are
    /// 16 lanes wide and libtorch's F32 GEMM is not. libtorch's MKL runs 16-lane code on Intel CPUs only; on this
    /// project's AMD machines it stays at 8 lanes (85 GFLOP/s on one core, whatever MKL_ENABLE_INSTRUCTIONS says),
    /// where the kernel at 64 rows reaches 105-150. On an Intel CPU MKL keeps them.
    /// </summary>
    public static bool ManyRows => Wide && !GenuineIntel;

    static readonly bool GenuineIntel = X86Base.IsSupported && Vendor() == "GenuineIntel";

    static string Vendor()
    {
        var (_, b, c, d) = X86Base.CpuId(0, 0);
        Span<int> v = [b, d, c];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(v));
    }

    /// <summary>
    /// x Wᵀ + b as a new tensor [..., n] when the kernel applies: x [..., k] and W [n, k] both F32 (at most
    /// <see cref="MaxRows"/> rows) or both BF16 (at most <see cref="MaxRowsBf16"/>, any count where libtorch has no BF16 instructions) on the CPU, W contiguous, k a
    /// multiple of 8, no gradient wanted. Null otherwise (use libtorch). BF16 is computed as libtorch does: products
    /// summed in F32, the bias added in F32, the result rounded to BF16 once.
    /// </summary>
    public static Tensor? TryForward(Tensor x, Tensor w, Tensor? bias)
    {
        if (!Enabled) return null;
        var dtype = w.dtype;
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16) || x.dtype != dtype) return null;
        if (x.device_type != DeviceType.CPU || w.device_type != DeviceType.CPU) return null;
        // size(i) rather than shape: each shape read costs about 1.2 µs here, a call's whole overhead about 2
        long xd = x.dim();
        if (w.dim() != 2 || xd < 1) return null;
        long n = w.size(0), k = w.size(1);
        if (k == 0 || k % 8 != 0 || x.size(-1) != k || n == 0) return null;
        var xs = new long[xd];
        long rows = 1;
        for (int i = 0; i < xd - 1; i++) rows *= xs[i] = x.size(i);
        if (rows < 1 || rows > MostRows(dtype == ScalarType.Float32, k) || !w.is_contiguous()) return null;
        if (bias is not null && (bias.dtype != dtype || bias.device_type != DeviceType.CPU || bias.numel() != n || !bias.is_contiguous())) return null;
        if (is_grad_enabled() && (x.requires_grad || w.requires_grad || bias?.requires_grad == true)) return null;

        bool f32 = dtype == ScalarType.Float32;
        var xc = !f32 ? x.to_type(ScalarType.Float32).contiguous() : x.is_contiguous() ? x : x.contiguous();
        var bc = bias is null || f32 ? bias : bias.to_type(ScalarType.Float32);
        xs[^1] = n;
        var y = empty(xs, ScalarType.Float32);
        Run(new Job(Data(xc), Data(w), bc is null ? null : Data(bc), Data(y), (int)rows, n, k, f32));
        if (!ReferenceEquals(xc, x)) xc.Dispose();
        if (!ReferenceEquals(bc, bias)) bc!.Dispose();
        GC.KeepAlive(x); GC.KeepAlive(w); GC.KeepAlive(bias);
        if (f32) return y;
        using (y) return y.to_type(ScalarType.BFloat16);
    }

    /// <summary>The most rows a product with rows of length <paramref name="k"/> may have here: any count where 16-lane F32 tiles take prefill, or where libtorch has no BF16 instructions.</summary>
    static long MostRows(bool f32, long k) => !f32 ? (NativeBf16 ? MaxRowsBf16 : long.MaxValue) : ManyRows && k % 16 == 0 ? long.MaxValue : MaxRows;

    /// <summary>
    /// y = x Wᵀ written into <paramref name="y"/> [rows, n] (contiguous F32, e.g. a preallocated buffer) where the
    /// kernel takes the product: x [rows, k] and W [n, k] F32 on the CPU, both contiguous, k a multiple of 8 (and of 16
    /// above <see cref="MaxRows"/> rows, which need <see cref="ManyRows"/>), no gradient wanted. False, and y
    /// untouched, otherwise. Head training's logits (a chunk's rows x vocab, into its reused buffer) use it.
    /// </summary>
    public static bool TryInto(Tensor x, Tensor w, Tensor y)
    {
        if (!Enabled || x.dtype != ScalarType.Float32 || w.dtype != ScalarType.Float32 || y.dtype != ScalarType.Float32) return false;
        if (x.device_type != DeviceType.CPU || w.device_type != DeviceType.CPU || y.device_type != DeviceType.CPU) return false;
        if (x.dim() != 2 || w.dim() != 2 || y.dim() != 2) return false;
        long rows = x.size(0), k = x.size(1), n = w.size(0);
        if (rows < 1 || k == 0 || k % 8 != 0 || w.size(1) != k || n == 0 || y.size(0) != rows || y.size(1) != n) return false;
        if (rows > MostRows(true, k)) return false;
        if (!x.is_contiguous() || !w.is_contiguous() || !y.is_contiguous()) return false;
        if (is_grad_enabled() && (x.requires_grad || w.requires_grad || y.requires_grad)) return false;
        Run(new Job(Data(x), Data(w), null, Data(y), (int)rows, n, k, true));
        GC.KeepAlive(x); GC.KeepAlive(w); GC.KeepAlive(y);
        return true;
    }

    /// <summary>
    /// y [rows, n] = x [rows, k] Wᵀ (+ bias) on raw F32 buffers and a contiguous F32 or BF16 W [n, k] (k a multiple of 8,
    /// at most <see cref="MaxRows"/> rows), unrounded: the kernel without the tensor around it, for a caller that has
    /// already checked the shapes (the fused decoding step).
    /// </summary>
    internal static void Multiply(float* x, int rows, byte* w, float* bias, float* y, long n, long k, bool f32Weights) =>
        Run(new Job((byte*)x, w, (byte*)bias, (byte*)y, rows, n, k, f32Weights));

    static void Run(in Job job)
    {
        if (job.Rows > MaxRows)
        {
            for (int r0 = 0; r0 < job.Rows; r0 += MaxRows) Run(job.RowRange(r0, Math.Min(MaxRows, job.Rows - r0)));
            return;
        }
        int threads = OpenMpThreads.IdleThreadsSleep ? (int)Math.Min(get_num_threads(), job.N / 64) : 1;
        if (threads <= 1 || !KernelThreads.TryRun(job, threads)) job.RunPart(0, 1);
    }

    [DllImport("LibTorchSharp")]
    static extern IntPtr THSTensor_data(IntPtr handle);

    internal static byte* Data(Tensor t) => (byte*)THSTensor_data(t.Handle);

    /// <summary>One call's operands: y [rows, n] = x [rows, k] W[n, k]ᵀ (+ bias), x, y and bias F32, W F32 or BF16.</summary>
    internal readonly struct Job(byte* x, byte* w, byte* bias, byte* y, int rows, long n, long k, bool f32)
    {
        readonly float* X = (float*)x, Bias = (float*)bias, Y = (float*)y;
        readonly byte* W = w;
        public readonly int Rows = rows;
        public readonly long N = n;
        readonly long K = k;
        readonly bool F32 = f32;
        readonly bool Wide16 = Wide && k % 16 == 0;

        /// <summary>Rows [r0, r0 + count) of this job.</summary>
        public Job RowRange(int r0, int count) => new((byte*)(X + r0 * K), W, (byte*)Bias, (byte*)(Y + r0 * N), count, N, K, F32);

        /// <summary>Part <paramref name="part"/> of <paramref name="parts"/>: a contiguous range of W rows, 4-aligned.</summary>
        public void RunPart(int part, int parts)
        {
            long tiles = (N + 3) / 4;
            long n0 = Math.Min(N, tiles * part / parts * 4), n1 = Math.Min(N, tiles * (part + 1) / parts * 4);
            if (F32) Run<F32Weights>(X, W, Bias, Y, Rows, N, K, n0, n1, Wide16);
            else Run<Bf16Weights>(X, W, Bias, Y, Rows, N, K, n0, n1, Wide16);
        }
    }

    /// <summary>How a tile reads 8 consecutive weights of a row as F32 (the JIT specialises each tile per type).</summary>
    internal interface IWeights
    {
        static abstract int Bytes { get; }
        static abstract Vector256<float> Load8(byte* row, long j);
        static abstract Vector512<float> Load16(byte* row, long j);
    }

    internal readonly struct F32Weights : IWeights
    {
        public static int Bytes => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* row, long j) => Avx.LoadVector256((float*)row + j);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, long j) => Avx512F.LoadVector512((float*)row + j);
    }

    /// <summary>BF16 is the top half of an F32: widen each 16-bit value to 32 bits and shift it up.</summary>
    internal readonly struct Bf16Weights : IWeights
    {
        public static int Bytes => 2;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(byte* row, long j) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + j), 16).AsSingle();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, long j) => WidenBf16(Avx.LoadVector256((ushort*)row + j));
    }

    /// <summary>y[b, r] = Σ_j x[b, j] w[r, j] (+ bias[r]) for b &lt; rows and W rows r in [n0, n1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run<TW>(float* x, byte* w, float* bias, float* y, int rows, long n, long k, long n0, long n1, bool wide) where TW : struct, IWeights
    {
        long stride = k * TW.Bytes;                           // bytes per W row
        bool lines = stride % 64 == 0, onLine = ((nint)(w + n0 * stride) & 63) == 0;
        if (rows == 1 && lines && (wide || onLine))
        {
            // One x row: W is read in order, a row at a time, one sequential stream that the CPU's prefetchers follow
            // at about the memory's read bandwidth (1.1-1.4x the pace of the 4-row tiles' four streams). Where the
            // rows do not start cache lines (a checkpoint mapped from a file whose header ends mid-line), unaligned
            // loads would straddle two lines each and run slower than the tiles; the 16-lane walk then loads whole
            // lines and shifts them into place (Walk16Shifted), and the 8-lane one leaves it to the tiles. Same sums.
            if (!onLine) Walk16Shifted<TW>(x, w + n0 * stride, bias, y, n0, n1, k);
            else if (wide) for (long r = n0; r < n1; r++) Wide1x1<TW>(x, w + r * stride, bias, y, r, k);
            else for (long r = n0; r < n1; r++) Tile1x1<TW>(x, w + r * stride, bias, y, r, k);
            return;
        }
        long block = Math.Max(4, (131072 / stride) & ~3L);    // W rows per block: about 128 KB, which stays in L2
        // x rows in groups, each passing over the block: of at most 8 with 16-lane tiles (16 measured no faster there);
        // of at most 16 with 8-lane ones, so that 16 rows read W from memory once (1.2x at 16 rows on an AVX2 EPYC)
        int groups = wide ? (rows + 7) / 8 : (rows + 15) / 16;
        long tileLines = (4 * stride + 63) / 64;              // cache lines of a tile of 4 W rows
        for (long rb = n0; rb < n1; rb += block)
        {
            long re = Math.Min(n1, rb + block);
            for (int g = 0; g < groups; g++)
            {
                int b0 = rows * g / groups, b1 = rows * (g + 1) / groups;
                long r = rb;
                for (; r + 4 <= re; r += 4)
                {
                    byte* wr = w + r * stride;
                    // the first group streams W from memory: it prefetches the next 4 rows meanwhile (16 lanes: its first tile)
                    byte* next = g == 0 && r + 8 <= n1 ? wr + 4 * stride : null;
                    int b = b0;
                    if (wide)
                    {
                        for (; b + 4 <= b1; b += 4, next = null) Wide4x4<TW>(x + b * k, wr, stride, bias, y + b * n, r, n, k, next);
                        for (; b + 2 <= b1; b += 2, next = null) Wide4x2<TW>(x + b * k, wr, stride, bias, y + b * n, r, n, k, next);
                        if (b < b1) Wide4x1<TW>(x + b * k, wr, stride, bias, y + b * n, r, k, next);
                        continue;
                    }
                    // the first group's calls on this tile share the prefetch of the next tile evenly: one call's
                    // burst of all its lines measured no faster than none, shares over all calls 1.2x (AVX2 EPYC, 16 rows)
                    int calls = (b1 - b0) / 3 + ((b1 - b0) % 3 != 0 ? 1 : 0), c = 0;
                    for (; b + 3 <= b1; b += 3, c++) Tile4x3<TW>(x + b * k, wr, stride, bias, y + b * n, r, n, k, Share(next, tileLines, c, calls, out var share), share);
                    for (; b + 2 <= b1; b += 2, c++) Tile4x2<TW>(x + b * k, wr, stride, bias, y + b * n, r, n, k, Share(next, tileLines, c, calls, out var share), share);
                    if (b < b1) Tile4x1<TW>(x + b * k, wr, stride, bias, y + b * n, r, k, Share(next, tileLines, c, calls, out var share), share);
                }
                for (; r < re; r++)
                    for (int b = b0; b < b1; b++)
                        if (wide) Wide1x1<TW>(x + b * k, w + r * stride, bias, y + b * n, r, k);
                        else Tile1x1<TW>(x + b * k, w + r * stride, bias, y + b * n, r, k);
            }
        }
    }

    /// <summary>
    /// The four accumulators' sums [Σa, Σb, Σc, Σd], each ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)) over its lanes: the one
    /// order every tile uses.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Sum4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d)
    {
        var h = Avx.HorizontalAdd(Avx.HorizontalAdd(a, b), Avx.HorizontalAdd(c, d));
        return Sse.Add(h.GetLower(), h.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store4(float* y, float* bias, long r, Vector128<float> s)
    {
        if (bias != null) s = Sse.Add(s, Sse.LoadVector128(bias + r));
        Sse.Store(y + r, s);
    }

    /// <summary>Call <paramref name="call"/> of <paramref name="calls"/>'s share of the next tile's <paramref name="tileLines"/> lines: where it starts, and how many (none without a next tile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static byte* Share(byte* next, long tileLines, int call, int calls, out long lines)
    {
        if (next == null) { lines = 0; return null; }
        long from = tileLines * call / calls;
        lines = tileLines * (call + 1) / calls - from;
        return next + from * 64;
    }

    /// <summary>This call's share of the next tile (<paramref name="lines"/> lines) spread evenly over its <paramref name="steps"/> steps: called once a step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Prefetch(ref byte* p, ref long due, long lines, long steps)
    {
        due += lines;
        while (due >= steps)
        {
            Sse.Prefetch0(p);
            p += 64;
            due -= steps;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile4x1<TW>(float* x, byte* w, long stride, float* bias, float* y, long r, long k, byte* pf, long lines) where TW : struct, IWeights
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        long due = 0;
        for (long j = 0; j < k; j += 8)
        {
            Prefetch(ref pf, ref due, lines, k / 8);
            var xa = Avx.LoadVector256(x + j);
            a0 = Fma.MultiplyAdd(TW.Load8(w, j), xa, a0);
            a1 = Fma.MultiplyAdd(TW.Load8(w1, j), xa, a1);
            a2 = Fma.MultiplyAdd(TW.Load8(w2, j), xa, a2);
            a3 = Fma.MultiplyAdd(TW.Load8(w3, j), xa, a3);
        }
        Store4(y, bias, r, Sum4(a0, a1, a2, a3));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile4x2<TW>(float* x, byte* w, long stride, float* bias, float* y, long r, long n, long k, byte* pf, long lines) where TW : struct, IWeights
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        float* xb = x + k;
        byte* w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        long due = 0;
        for (long j = 0; j < k; j += 8)
        {
            Prefetch(ref pf, ref due, lines, k / 8);
            var xa = Avx.LoadVector256(x + j);
            var xbj = Avx.LoadVector256(xb + j);
            var v0 = TW.Load8(w, j); a0 = Fma.MultiplyAdd(v0, xa, a0); b0 = Fma.MultiplyAdd(v0, xbj, b0);
            var v1 = TW.Load8(w1, j); a1 = Fma.MultiplyAdd(v1, xa, a1); b1 = Fma.MultiplyAdd(v1, xbj, b1);
            var v2 = TW.Load8(w2, j); a2 = Fma.MultiplyAdd(v2, xa, a2); b2 = Fma.MultiplyAdd(v2, xbj, b2);
            var v3 = TW.Load8(w3, j); a3 = Fma.MultiplyAdd(v3, xa, a3); b3 = Fma.MultiplyAdd(v3, xbj, b3);
        }
        Store4(y, bias, r, Sum4(a0, a1, a2, a3));
        Store4(y + n, bias, r, Sum4(b0, b1, b2, b3));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile4x3<TW>(float* x, byte* w, long stride, float* bias, float* y, long r, long n, long k, byte* pf, long lines) where TW : struct, IWeights
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        float* xb = x + k, xc = x + 2 * k;
        byte* w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        long due = 0;
        for (long j = 0; j < k; j += 8)
        {
            Prefetch(ref pf, ref due, lines, k / 8);
            var xa = Avx.LoadVector256(x + j);
            var xbj = Avx.LoadVector256(xb + j);
            var xcj = Avx.LoadVector256(xc + j);
            var v0 = TW.Load8(w, j); a0 = Fma.MultiplyAdd(v0, xa, a0); b0 = Fma.MultiplyAdd(v0, xbj, b0); c0 = Fma.MultiplyAdd(v0, xcj, c0);
            var v1 = TW.Load8(w1, j); a1 = Fma.MultiplyAdd(v1, xa, a1); b1 = Fma.MultiplyAdd(v1, xbj, b1); c1 = Fma.MultiplyAdd(v1, xcj, c1);
            var v2 = TW.Load8(w2, j); a2 = Fma.MultiplyAdd(v2, xa, a2); b2 = Fma.MultiplyAdd(v2, xbj, b2); c2 = Fma.MultiplyAdd(v2, xcj, c2);
            var v3 = TW.Load8(w3, j); a3 = Fma.MultiplyAdd(v3, xa, a3); b3 = Fma.MultiplyAdd(v3, xbj, b3); c3 = Fma.MultiplyAdd(v3, xcj, c3);
        }
        Store4(y, bias, r, Sum4(a0, a1, a2, a3));
        Store4(y + n, bias, r, Sum4(b0, b1, b2, b3));
        Store4(y + 2 * n, bias, r, Sum4(c0, c1, c2, c3));
    }

    /// <summary>One (W row, x row) pair, summed in the tiles' order: the rows past the last whole tile of 4, and every row for a single x row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile1x1<TW>(float* x, byte* w, float* bias, float* y, long r, long k) where TW : struct, IWeights
    {
        Vector256<float> a = default;
        for (long j = 0; j < k; j += 8) a = Fma.MultiplyAdd(TW.Load8(w, j), Avx.LoadVector256(x + j), a);
        Finish1(a, bias, y, r);
    }

    /// <summary>y[r] from one pair's 8-lane accumulator, its lanes summed in the tiles' order (+ bias[r]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Finish1(Vector256<float> a, float* bias, float* y, long r)
    {
        float s = Sum4(a, a, a, a).ToScalar();
        y[r] = bias != null ? s + bias[r] : s;
    }

    // The 16-lane tiles: the same walk with twice the lanes. Each accumulator's upper 8 lanes are added to its lower 8
    // (Fold), then summed as the 8-lane tiles sum theirs, so every tile of a matrix sums a product in one order.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Fold(Vector512<float> a) => Avx.Add(a.GetLower(), a.GetUpper());

    /// <summary>The next tile's share for 16 columns (4 rows x 16 weights, two or four cache lines).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Prefetch16<TW>(byte* next, long j) where TW : struct, IWeights
    {
        if (next == null) return;
        byte* p = next + j * 4 * TW.Bytes;
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        if (TW.Bytes == 4) { Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Wide4x1<TW>(float* x, byte* w, long stride, float* bias, float* y, long r, long k, byte* next) where TW : struct, IWeights
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        for (long j = 0; j < k; j += 16)
        {
            Prefetch16<TW>(next, j);
            var xa = Avx512F.LoadVector512(x + j);
            a0 = Avx512F.FusedMultiplyAdd(TW.Load16(w, j), xa, a0);
            a1 = Avx512F.FusedMultiplyAdd(TW.Load16(w1, j), xa, a1);
            a2 = Avx512F.FusedMultiplyAdd(TW.Load16(w2, j), xa, a2);
            a3 = Avx512F.FusedMultiplyAdd(TW.Load16(w3, j), xa, a3);
        }
        Store4(y, bias, r, Sum4(Fold(a0), Fold(a1), Fold(a2), Fold(a3)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Wide4x2<TW>(float* x, byte* w, long stride, float* bias, float* y, long r, long n, long k, byte* next) where TW : struct, IWeights
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        float* xb = x + k;
        byte* w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        for (long j = 0; j < k; j += 16)
        {
            Prefetch16<TW>(next, j);
            var xa = Avx512F.LoadVector512(x + j);
            var xbj = Avx512F.LoadVector512(xb + j);
            var v0 = TW.Load16(w, j); a0 = Avx512F.FusedMultiplyAdd(v0, xa, a0); b0 = Avx512F.FusedMultiplyAdd(v0, xbj, b0);
            var v1 = TW.Load16(w1, j); a1 = Avx512F.FusedMultiplyAdd(v1, xa, a1); b1 = Avx512F.FusedMultiplyAdd(v1, xbj, b1);
            var v2 = TW.Load16(w2, j); a2 = Avx512F.FusedMultiplyAdd(v2, xa, a2); b2 = Avx512F.FusedMultiplyAdd(v2, xbj, b2);
            var v3 = TW.Load16(w3, j); a3 = Avx512F.FusedMultiplyAdd(v3, xa, a3); b3 = Avx512F.FusedMultiplyAdd(v3, xbj, b3);
        }
        Store4(y, bias, r, Sum4(Fold(a0), Fold(a1), Fold(a2), Fold(a3)));
        Store4(y + n, bias, r, Sum4(Fold(b0), Fold(b1), Fold(b2), Fold(b3)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Wide4x4<TW>(float* x, byte* w, long stride, float* bias, float* y, long r, long n, long k, byte* next) where TW : struct, IWeights
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default;
        float* xb = x + k, xc = x + 2 * k, xd = x + 3 * k;
        byte* w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        for (long j = 0; j < k; j += 16)
        {
            Prefetch16<TW>(next, j);
            var v0 = TW.Load16(w, j); var v1 = TW.Load16(w1, j); var v2 = TW.Load16(w2, j); var v3 = TW.Load16(w3, j);
            var xj = Avx512F.LoadVector512(x + j);
            a0 = Avx512F.FusedMultiplyAdd(v0, xj, a0); a1 = Avx512F.FusedMultiplyAdd(v1, xj, a1); a2 = Avx512F.FusedMultiplyAdd(v2, xj, a2); a3 = Avx512F.FusedMultiplyAdd(v3, xj, a3);
            xj = Avx512F.LoadVector512(xb + j);
            b0 = Avx512F.FusedMultiplyAdd(v0, xj, b0); b1 = Avx512F.FusedMultiplyAdd(v1, xj, b1); b2 = Avx512F.FusedMultiplyAdd(v2, xj, b2); b3 = Avx512F.FusedMultiplyAdd(v3, xj, b3);
            xj = Avx512F.LoadVector512(xc + j);
            c0 = Avx512F.FusedMultiplyAdd(v0, xj, c0); c1 = Avx512F.FusedMultiplyAdd(v1, xj, c1); c2 = Avx512F.FusedMultiplyAdd(v2, xj, c2); c3 = Avx512F.FusedMultiplyAdd(v3, xj, c3);
            xj = Avx512F.LoadVector512(xd + j);
            d0 = Avx512F.FusedMultiplyAdd(v0, xj, d0); d1 = Avx512F.FusedMultiplyAdd(v1, xj, d1); d2 = Avx512F.FusedMultiplyAdd(v2, xj, d2); d3 = Avx512F.FusedMultiplyAdd(v3, xj, d3);
        }
        Store4(y, bias, r, Sum4(Fold(a0), Fold(a1), Fold(a2), Fold(a3)));
        Store4(y + n, bias, r, Sum4(Fold(b0), Fold(b1), Fold(b2), Fold(b3)));
        Store4(y + 2 * n, bias, r, Sum4(Fold(c0), Fold(c1), Fold(c2), Fold(c3)));
        Store4(y + 3 * n, bias, r, Sum4(Fold(d0), Fold(d1), Fold(d2), Fold(d3)));
    }

    /// <summary>
    /// One x row over W rows [r0, r1) starting at <paramref name="w"/>, which is not on a cache line but whose rows are
    /// whole lines long: each step loads the next aligned 64-byte line and takes the row's 16 F32 (or 32 BF16) values
    /// out of it and the line before with one two-register permute, so no load straddles lines. The values, and so
    /// the sums (<see cref="Wide1x1{TW}"/>'s order), are the unaligned loads' exactly. The first load reads the bytes
    /// of W's first line before W, the last the bytes of its last line after W: never another line, so never another
    /// page.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Walk16Shifted<TW>(float* x, byte* w, float* bias, float* y, long r0, long r1, long k) where TW : struct, IWeights
    {
        int past = (int)((nint)w & 63);                       // bytes from the line's start to W's
        byte* line = w - past;
        if (TW.Bytes == 4)
        {
            var take = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + Vector512.Create(past / 4);
            var prev = Avx512F.LoadAlignedVector512((float*)line);
            for (long r = r0; r < r1; r++)
            {
                Vector512<float> a = default;
                for (long j = 0; j < k; j += 16)
                {
                    line += 64;
                    var next = Avx512F.LoadAlignedVector512((float*)line);
                    a = Avx512F.FusedMultiplyAdd(Avx512F.PermuteVar16x32x2(prev, take, next), Avx512F.LoadVector512(x + j), a);
                    prev = next;
                }
                Finish1(a, bias, y, r);
            }
        }
        else
        {
            var take = Vector512.Create((ushort)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                23, 24, 25, 26, 27, 28, 29, 30, 31) + Vector512.Create((ushort)(past / 2));
            var prev = Avx512BW.LoadAlignedVector512((ushort*)line);
            for (long r = r0; r < r1; r++)
            {
                Vector512<float> a = default;
                for (long j = 0; j < k; j += 32)
                {
                    line += 64;
                    var next = Avx512BW.LoadAlignedVector512((ushort*)line);
                    var v = Avx512BW.PermuteVar32x16x2(prev, take, next);   // the row's 32 BF16 values from j on
                    a = Avx512F.FusedMultiplyAdd(WidenBf16(v.GetLower()), Avx512F.LoadVector512(x + j), a);
                    a = Avx512F.FusedMultiplyAdd(WidenBf16(v.GetUpper()), Avx512F.LoadVector512(x + j + 16), a);
                    prev = next;
                }
                Finish1(a, bias, y, r);
            }
        }
    }

    /// <summary>16 BF16 values as F32 (each the top half of its F32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> WidenBf16(Vector256<ushort> v) => Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(v), 16).AsSingle();

    /// <summary>y[r] from one pair's 16-lane accumulator: folded to 8 lanes, then as <see cref="Finish1(Vector256{float}, float*, float*, long)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Finish1(Vector512<float> a, float* bias, float* y, long r) => Finish1(Fold(a), bias, y, r);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Wide1x1<TW>(float* x, byte* w, float* bias, float* y, long r, long k) where TW : struct, IWeights
    {
        Vector512<float> a = default;
        for (long j = 0; j < k; j += 16) a = Avx512F.FusedMultiplyAdd(TW.Load16(w, j), Avx512F.LoadVector512(x + j), a);
        Finish1(a, bias, y, r);
    }
}

/// <summary>
/// The threads <see cref="SkinnyLinear"/> splits a call over: created on first use, one fewer than the parts (the
/// calling thread runs part 0), waiting on a semaphore between calls. A call hands them its <see cref="SkinnyLinear.Job"/>
/// and waits for all parts, allocating nothing: another thread's managed allocations can let the garbage collector
/// free a TorchSharp Scalar while libtorch reads it (see the README), so code that runs beside libtorch calls should
/// not allocate. One call at a time: a second caller meanwhile (another engine thread) runs its call alone.
/// </summary>
internal static class KernelThreads
{
    static readonly Lock gate = new();
    static readonly List<SemaphoreSlim> workers = [];   // worker i runs part i + 1 when released
    static SkinnyLinear.Job job;
    static int parts, pending;

    public static bool TryRun(SkinnyLinear.Job work, int partCount)
    {
        if (!gate.TryEnter()) return false;
        try
        {
            while (workers.Count < partCount - 1) Start(workers.Count + 1);
            job = work; parts = partCount;
            Volatile.Write(ref pending, partCount - 1);
            for (int i = 0; i < partCount - 1; i++) workers[i].Release();
            work.RunPart(0, partCount);
            var spin = new SpinWait();
            while (Volatile.Read(ref pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
            return true;
        }
        finally { gate.Exit(); }
    }

    static void Start(int part)
    {
        var start = new SemaphoreSlim(0);
        new Thread(() =>
        {
            while (true)
            {
                start.Wait();
                job.RunPart(part, parts);
                Interlocked.Decrement(ref pending);
            }
        }) { IsBackground = true, Name = $"superficial-linear-{part}" }.Start();
        workers.Add(start);
    }
}
