using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Tensors;

/// <summary>
/// The decoding-step linear kernel against float64 matmuls: every shape class it tiles (a single x row walking W a row
/// at a time; W rows in tiles of 4 and the rest, x rows in 4s, 3s, 2s and 1s, groups of 8, blocks of W rows), with and without bias, and its guarantee that a
/// row's result does not depend on the rows beside it or on the thread split, bit for bit. Each runs with the
/// 16-lane tiles (where the CPU has AVX-512) and the 8-lane ones.
/// </summary>
public class SkinnyLinearTests
{
    /// <summary>The kernel needs AVX2 and FMA; on other CPUs libtorch computes every linear and there is nothing to test.</summary>
    static bool Hardware => System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported;

    /// <summary>The tile widths this CPU runs: 8 lanes always, 16 where it has AVX-512.</summary>
    static bool[] Widths => System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported ? [false, true] : [false];

    /// <summary>Runs <paramref name="body"/> once per tile width, restoring the default after.</summary>
    static void ForEachWidth(Action<string> body)
    {
        bool before = SkinnyLinear.Wide;
        try
        {
            foreach (bool wide in Widths)
            {
                SkinnyLinear.Wide = wide;
                body(wide ? "16 lanes" : "8 lanes");
            }
        }
        finally { SkinnyLinear.Wide = before; }
    }

    static (Tensor x, Tensor w, Tensor b) Operands(long rows, long n, long k, int seed)
    {
        var g = new TorchSharp.torch.Generator((ulong)seed);
        return (randn([rows, k], generator: g), randn([n, k], generator: g).div_(Math.Sqrt(k)), randn([n], generator: g));
    }

    static Tensor Run(Tensor x, Tensor w, Tensor? b)
    {
        using var _ = no_grad();
        var y = SkinnyLinear.TryForward(x, w, b);
        Assert.True(y is not null, "the kernel declined (is SUPERFICIAL_LINEAR=libtorch set?)");
        return y!;
    }

    [Theory]
    [InlineData(1, 1, 8)]
    [InlineData(1, 3, 16)]
    [InlineData(2, 4, 24)]
    [InlineData(3, 5, 512)]
    [InlineData(5, 37, 64)]
    [InlineData(8, 513, 512)]
    [InlineData(9, 130, 1544)]
    [InlineData(16, 1031, 40)]
    [InlineData(17, 64, 2048)]
    [InlineData(64, 301, 96)]
    public void MatchesFloat64MatmulWithAndWithoutBias(int rows, int n, int k)
    {
        if (!Hardware) return;
        var (x, w, b) = Operands(rows, n, k, rows * 1000 + n);
        using var want = x.to_type(ScalarType.Float64).matmul(w.to_type(ScalarType.Float64).t());
        ForEachWidth(width =>
        {
            foreach (var bias in new[] { null, b })
            {
                using var y = Run(x, w, bias);
                Assert.Equal(new long[] { rows, n }, y.shape);
                using var expected = bias is null ? want.clone() : want + bias.to_type(ScalarType.Float64);
                double err = (y.to_type(ScalarType.Float64) - expected).abs().max().item<double>();
                Assert.True(err < 2e-5 * Math.Sqrt(k), $"{width}, rows {rows}, [{n} x {k}], bias {bias is not null}: max error {err:E2}");
            }
        });
    }

    [Fact]
    public void KeepsLeadingDimensionsAndReadsNonContiguousRows()
    {
        if (!Hardware) return;
        var (x, w, b) = Operands(6, 48, 32, 7);
        using var x3 = x.view(2, 3, 32);                 // [batch, positions, hidden] as the models pass it
        using var xt = x.t().contiguous().t();           // the same values, column-major
        using var y3 = Run(x3, w, b);
        using var yt = Run(xt, w, b);
        using var y = Run(x, w, b);
        Assert.Equal(new long[] { 2, 3, 48 }, y3.shape);
        Assert.True(y3.view(6, 48).equal(y).all().item<bool>());
        Assert.True(yt.equal(y).all().item<bool>());
        using var lib = nn.functional.linear(x, w, b);
        Assert.True(y.allclose(lib, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void ARowsResultDoesNotDependOnTheRowsBesideItOrTheThreads()
    {
        if (!Hardware) return;
        var (x, w, b) = Operands(SkinnyLinear.MaxRows, 1030, 256, 11);
        ForEachWidth(width => Independent(x, w, b, width));
    }

    static void Independent(Tensor x, Tensor w, Tensor b, string width)
    {
        using var all = Run(x, w, b);
        foreach (int rows in new[] { 1, 2, 3, 7, 8, 9, 16, 33 })
            for (int start = 0; start + rows <= SkinnyLinear.MaxRows; start += 29)
            {
                using var part = Run(x.narrow(0, start, rows), w, b);
                Assert.True(part.equal(all.narrow(0, start, rows)).all().item<bool>(), $"{width}: rows {start}..{start + rows - 1} decoded {rows} at a time differ from the full batch");
            }
        Assert.True(OpenMpThreads.IdleThreadsSleep, "TestSetup sets OMP_WAIT_POLICY=PASSIVE as the command does; without it the kernel keeps to one thread and the split is not tested");
        int threads = get_num_threads();
        try
        {
            foreach (int t in new[] { 2, 3 })
            {
                set_num_threads(t);
                using var split = Run(x, w, b);
                Assert.True(split.equal(all).all().item<bool>(), $"{width}: {t} threads differ from one");
                using var one = Run(x.narrow(0, 5, 1), w, b);   // one row walks W a row at a time, split the same way
                Assert.True(one.equal(all.narrow(0, 5, 1)).all().item<bool>(), $"{width}: one row on {t} threads differs from the batch");
            }
        }
        finally { set_num_threads(threads); }
    }

    [Fact]
    public void ARowsBitsDoNotDependOnWhereWStartsInMemory()
    {
        if (!Hardware) return;
        // one row walks W in memory order: with plain loads where W's rows start cache lines, with whole lines shifted
        // into place (16 lanes) or by the tiles (8 lanes) where they do not, e.g. a checkpoint mapped from a file whose
        // header leaves the data 8 bytes past a line. The same sums every way, at every offset within a line.
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            var (x, w, b) = Operands(SkinnyLinear.MaxRowsBf16, 130, 512, 13);
            (x, w, b) = (x.to_type(dtype), w.to_type(dtype), b.to_type(dtype));
            int perLine = dtype == ScalarType.Float32 ? 16 : 32;
            using var storage = empty(w.numel() + perLine, dtype);
            ForEachWidth(width =>
            {
                using var all = Run(x, w, b);
                for (int offset = 0; offset < perLine; offset++)
                {
                    var shifted = storage.narrow(0, offset, w.numel()).view(w.shape);
                    shifted.copy_(w);
                    Assert.True(shifted.is_contiguous());
                    for (int r = 0; r < SkinnyLinear.MaxRowsBf16; r++)
                    {
                        using var one = Run(x.narrow(0, r, 1), shifted, b);
                        Assert.True(one.equal(all.narrow(0, r, 1)).all().item<bool>(), $"{width} {dtype}: row {r} with W {offset} elements past a line differs from the batch");
                    }
                }
                // and split over two threads (each walks its own range of W rows from the middle of a line)
                var off = storage.narrow(0, 3, w.numel()).view(w.shape);
                off.copy_(w);
                int threads = get_num_threads();
                try
                {
                    set_num_threads(2);
                    using var split = Run(x.narrow(0, 1, 1), off, b);
                    Assert.True(split.equal(all.narrow(0, 1, 1)).all().item<bool>(), $"{width} {dtype}: one row on 2 threads with W off a line differs");
                }
                finally { set_num_threads(threads); }
            });
        }
    }

    [Theory]
    [InlineData(1, 37, 64)]
    [InlineData(2, 256, 512)]
    [InlineData(4, 130, 1544)]
    public void Bf16WeightsAreSummedInF32AndRoundedOnceAsLibtorchDoes(int rows, int n, int k)
    {
        if (!Hardware) return;
        var (x, w, b) = Operands(rows, n, k, 5);
        ForEachWidth(width =>
        {
            var (xh, wh, bh) = (x.to_type(ScalarType.BFloat16), w.to_type(ScalarType.BFloat16), b.to_type(ScalarType.BFloat16));
            using var y = Run(xh, wh, bh);
            Assert.Equal(ScalarType.BFloat16, y.dtype);
            // the exact sum of the BF16 operands' products, plus the bias, rounded to BF16 once
            using var exact = xh.to_type(ScalarType.Float64).matmul(wh.to_type(ScalarType.Float64).t()) + bh.to_type(ScalarType.Float64);
            using var rounded = exact.to_type(ScalarType.BFloat16);
            double ulp = Math.Pow(2, -7);   // BF16 keeps 8 significant bits: results may differ from the exact rounding by one unit
            using var diff = (y.to_type(ScalarType.Float64) - rounded.to_type(ScalarType.Float64)).abs();
            using var allowed = exact.abs().mul(ulp).add(1e-6);
            Assert.True(diff.le(allowed).all().item<bool>(), $"{width}, rows {rows}, [{n} x {k}]: max error {diff.max().item<double>():E2}");
            using var lib = nn.functional.linear(xh, wh, bh);
            Assert.True(y.to_type(ScalarType.Float32).allclose(lib.to_type(ScalarType.Float32), rtol: 2 * ulp, atol: 1e-3));
            using var all = Run(xh.narrow(0, 0, rows), wh, bh);
            using var one = Run(xh.narrow(0, rows - 1, 1), wh, bh);
            Assert.True(one.equal(all.narrow(0, rows - 1, 1)).all().item<bool>(), $"{width}: a BF16 row's result depends on the rows beside it");
        });
    }

    [Fact]
    public void PrefillSizedProductsGo64RowsAtATimeWhereLibtorchIsNarrower()
    {
        if (!SkinnyLinear.ManyRows) return;
        var (x, w, b) = Operands(200, 300, 512, 19);
        using var y = Run(x, w, b);
        using var want = x.to_type(ScalarType.Float64).matmul(w.to_type(ScalarType.Float64).t()) + b.to_type(ScalarType.Float64);
        double err = (y.to_type(ScalarType.Float64) - want).abs().max().item<double>();
        Assert.True(err < 2e-5 * Math.Sqrt(512), $"200 rows: max error {err:E2}");
        // each row as it would be alone: a prompt's prefill gives the same bits whatever the batch
        foreach (var (start, rows) in new[] { (0, 1), (63, 2), (64, 64), (130, 70) })
        {
            using var part = Run(x.narrow(0, start, rows), w, b);
            Assert.True(part.equal(y.narrow(0, start, rows)).all().item<bool>(), $"rows {start}..{start + rows - 1} alone differ from the 200-row product");
        }
        using var x3 = x.view(4, 50, 512);                     // [batch, positions, hidden] as a prefill passes it
        using var y3 = Run(x3, w, b);
        Assert.True(y3.view(200, 300).equal(y).all().item<bool>());
    }

    [Fact]
    public void Bf16ProductsOfAnyRowCountComeHereWhereLibtorchHasNoBf16Instructions()
    {
        if (!Hardware) return;
        // libtorch's BF16 GEMM without AVX512-BF16 or AMX runs at about 8 GFLOP/s on an AVX2 EPYC core (F32: 70-80): a BF16
        // prompt's prefill and the base model's teacher-forced forward then come here, 64 rows at a time
        var (x, w, b) = Operands(200, 300, 512, 29);
        (x, w, b) = (x.to_type(ScalarType.BFloat16), w.to_type(ScalarType.BFloat16), b.to_type(ScalarType.BFloat16));
        bool native = SkinnyLinear.NativeBf16;
        try
        {
            SkinnyLinear.NativeBf16 = false;
            Assert.Equal(SkinnyLinear.MaxRows, SkinnyLinear.MaxRowsBf16);
            ForEachWidth(width =>
            {
                using var y = Run(x, w, b);
                Assert.Equal(ScalarType.BFloat16, y.dtype);
                // as libtorch defines it: products summed in F32, the bias added, the result rounded to BF16 once
                using var want = x.to_type(ScalarType.Float64).matmul(w.to_type(ScalarType.Float64).t()) + b.to_type(ScalarType.Float64);
                using var err = (y.to_type(ScalarType.Float64) - want).abs();
                using var bound = want.abs() * Math.Pow(2, -8) + 1e-4;
                Assert.True(err.le(bound).all().item<bool>(), $"{width}: max error {err.max().item<double>():E2} beyond one BF16 rounding");
                // each row as it would be alone or in another batch: a prompt's prefill and its decoding agree bit for bit
                foreach (var (start, rows) in new[] { (0, 1), (3, 4), (63, 2), (64, 64), (130, 70) })
                {
                    using var part = Run(x.narrow(0, start, rows), w, b);
                    Assert.True(part.equal(y.narrow(0, start, rows)).all().item<bool>(), $"{width}: rows {start}..{start + rows - 1} alone differ from the 200-row product");
                }
                using var y3 = Run(x.view(4, 50, 512), w, b);              // [batch, positions, hidden] as a prefill passes it
                Assert.True(y3.view(200, 300).equal(y).all().item<bool>());
            });
        }
        finally { SkinnyLinear.NativeBf16 = native; }
    }

    [Fact]
    public void WritesIntoAPreallocatedBufferWhatTryForwardComputes()
    {
        if (!Hardware) return;
        var (x, w, _) = Operands(100, 300, 512, 23);
        using var buffer = full(128, 300, float.NaN);
        using var z = buffer.narrow(0, 0, 100);
        bool took = SkinnyLinear.TryInto(x, w, z);
        Assert.Equal(SkinnyLinear.ManyRows, took);          // 100 rows: only where prefill-sized products go to the kernel
        if (took)
        {
            using var y = Run(x, w, null);
            Assert.True(z.equal(y).all().item<bool>());
            Assert.True(buffer.narrow(0, 100, 28).isnan().all().item<bool>(), "wrote past its rows");
        }
        using var x5 = x.narrow(0, 0, 5);
        using var small = empty(5, 300);
        Assert.True(SkinnyLinear.TryInto(x5, w, small));
        using var y5 = Run(x5, w, null);
        Assert.True(small.equal(y5).all().item<bool>());
        Assert.False(SkinnyLinear.TryInto(x5, w, empty(300, 5).t()));       // y not contiguous
        Assert.False(SkinnyLinear.TryInto(x5, w, empty(5, 299)));           // y of the wrong shape
        Assert.False(SkinnyLinear.TryInto(x5, w.t().contiguous().t(), small)); // W not row-major
    }

    [Fact]
    public void SixteenLaneTilesRunWhereTheCpuHasThem()
    {
        if (Widths.Length < 2) return;
        Assert.True(SkinnyLinear.Wide || Environment.GetEnvironmentVariable("SUPERFICIAL_LINEAR") == "avx2", "AVX-512 is present but the 16-lane tiles are off");
        var (x, w, b) = Operands(9, 260, 512, 13);
        Tensor? narrow = null, wide = null;
        ForEachWidth(width => { if (width == "8 lanes") narrow = Run(x, w, b); else wide = Run(x, w, b); });
        // the two sum each product's lanes in another order: some bit differs, and no more than rounding
        Assert.False(narrow!.equal(wide!).all().item<bool>(), "16-lane results equal the 8-lane ones bit for bit: the wide tiles did not run");
        Assert.True(narrow.allclose(wide, rtol: 1e-5, atol: 1e-5));
        // k not a multiple of 16 keeps the 8-lane tiles whatever the setting
        var (x8, w8, b8) = Operands(5, 64, 24, 17);
        ForEachWidth(width => { if (width == "8 lanes") narrow = Run(x8, w8, b8); else wide = Run(x8, w8, b8); });
        Assert.True(narrow.equal(wide).all().item<bool>());
    }

    [Fact]
    public void LeavesToLibtorchWhatItDoesNotCover()
    {
        var (x, w, b) = Operands(4, 16, 32, 3);
        using (no_grad())
        {
            bool wide = SkinnyLinear.Wide;
            try
            {
                SkinnyLinear.Wide = false;                                                          // 8-lane tiles: prefill stays with libtorch
                Assert.Null(SkinnyLinear.TryForward(randn(SkinnyLinear.MaxRows + 1, 32), w, b));
            }
            finally { SkinnyLinear.Wide = wide; }
            if (SkinnyLinear.ManyRows) Assert.Null(SkinnyLinear.TryForward(randn(SkinnyLinear.MaxRows + 1, 24), randn(16, 24), null));   // k not a multiple of 16
            bool native = SkinnyLinear.NativeBf16;
            try
            {
                SkinnyLinear.NativeBf16 = true;                                                     // libtorch's BF16 GEMM has its instructions: it keeps more than 4 rows
                Assert.Equal(4, SkinnyLinear.MaxRowsBf16);
                Assert.Null(SkinnyLinear.TryForward(randn(SkinnyLinear.MaxRowsBf16 + 1, 32).to_type(ScalarType.BFloat16), w.to_type(ScalarType.BFloat16), null));
            }
            finally { SkinnyLinear.NativeBf16 = native; }
            Assert.Null(SkinnyLinear.TryForward(x, w.to_type(ScalarType.BFloat16), null));                  // mixed dtypes
            Assert.Null(SkinnyLinear.TryForward(randn(4, 12), randn(16, 12), null));              // k not a multiple of 8
            Assert.Null(SkinnyLinear.TryForward(x, w.t().contiguous().t(), b));                    // W not row-major
        }
        using var wg = w.clone().requires_grad_(true);
        Assert.Null(SkinnyLinear.TryForward(x, wg, b));                                            // training wants gradients
    }
}
