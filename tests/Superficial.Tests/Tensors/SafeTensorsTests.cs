using System.Text;
using System.Text.Json.Nodes;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Tensors;

/// <summary>safetensors round trips, sharding, atomic writes, and hostile files.</summary>
public class SafeTensorsTests
{
    static Dictionary<string, Tensor> Sample() => new()
    {
        ["f32"] = tensor(new float[] { 1.5f, -2.25f, 3e-8f, float.MaxValue }, [2, 2]),
        ["f64"] = tensor(new double[] { Math.PI, -1e300 }),
        ["f64 line"] = arange(8, ScalarType.Float64),                 // 64 bytes: one cache line
        ["f32 lines"] = arange(32, ScalarType.Float32).reshape(2, 16), // 128 bytes
        ["bf16"] = tensor(new float[] { 1f, -0.5f, 3.140625f }).to_type(ScalarType.BFloat16),
        ["f16"] = tensor(new float[] { 65504f, -0.000061035156f, 0.5f }).to_type(ScalarType.Float16),
        ["i64"] = tensor(new long[] { long.MinValue, 7, long.MaxValue }),
        ["i32"] = tensor(new int[] { -3, 0, int.MaxValue }, [3, 1]),
        ["i16"] = tensor(new short[] { -3, 9 }),
        ["i8"] = tensor(new sbyte[] { -128, 127 }),
        ["u8"] = tensor(new byte[] { 0, 255 }),
        ["bool"] = tensor(new[] { true, false, true }),
        ["empty"] = zeros(0, 4),
    };

    [Fact]
    public void EveryDtypeRoundTripsBitForBit()
    {
        using var tmp = TestPaths.NewTempDir("st");
        var sample = Sample();
        SafeTensorsWriter.Write(tmp.File("a.safetensors"), sample, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" });
        using var f = SafeTensorsFile.Open(tmp.File("a.safetensors"));
        Assert.Equal("ünïcode", f.Metadata["note"]);
        Assert.Equal(sample.Count, f.Entries.Count);
        foreach (var (name, t) in sample)
        {
            using var back = f.Load(name);
            Assert.Equal(t.dtype, back.dtype);
            Assert.Equal(t.shape, back.shape);
            Assert.True(t.bytes.SequenceEqual(back.bytes), name);
        }
        Assert.Equal(DType.BF16, f.Entry("bf16").DType);
        // BF16 -> F32 conversion is torch's (exact: bf16 is truncated f32)
        using var asF32 = f.Load("bf16", ScalarType.Float32);
        Assert.Equal(new[] { 1f, -0.5f, 3.140625f }, asF32.data<float>().ToArray());
        // the header is padded so the data starts at a multiple of 64 bytes: each tensor of whole cache lines stays 64-aligned
        var bytes = File.ReadAllBytes(tmp.File("a.safetensors"));
        Assert.Equal(0UL, (8 + BitConverter.ToUInt64(bytes, 0)) % 64);
        Assert.Contains(f.Entries, e => e.ByteLength % 64 != 0);   // the sample has tensors of both kinds
        foreach (var e in f.Entries)
            if (e.ByteLength % 64 == 0) Assert.True(e.Begin % 64 == 0, $"{e.Name} starts at byte {e.Begin}");
    }

    [Fact]
    public void WritingIsDeterministicAndAtomic()
    {
        using var tmp = TestPaths.NewTempDir("st");
        SafeTensorsWriter.Write(tmp.File("a.safetensors"), Sample());
        SafeTensorsWriter.Write(tmp.File("b.safetensors"), Sample().Reverse());
        Assert.Equal(File.ReadAllBytes(tmp.File("a.safetensors")), File.ReadAllBytes(tmp.File("b.safetensors")));
        var good = File.ReadAllBytes(tmp.File("a.safetensors"));
        IEnumerable<KeyValuePair<string, Tensor>> Failing()
        {
            yield return KeyValuePair.Create("x", ones(3));
            throw new IOException("disk on fire");
        }
        Assert.Throws<IOException>(() => SafeTensorsWriter.Write(tmp.File("a.safetensors"), Failing()));
        Assert.Equal(good, File.ReadAllBytes(tmp.File("a.safetensors")));
        Assert.Equal(2, Directory.GetFiles(tmp.Path).Length); // no temporary file left behind
    }

    [Fact]
    public void ShardedCheckpointEqualsSingleFile()
    {
        using var tmp = TestPaths.NewTempDir("st");
        var tensors = Enumerable.Range(0, 10).ToDictionary(i => $"layer.{i}.weight", i => randn(16, 8) * i);
        SafeTensorsWriter.WriteCheckpoint(Path.Combine(tmp.Path, "one"), tensors);
        SafeTensorsWriter.WriteCheckpoint(Path.Combine(tmp.Path, "many"), tensors, maxShardBytes: 1200);
        Assert.True(File.Exists(Path.Combine(tmp.Path, "one", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(tmp.Path, "many", Checkpoint.IndexName)));
        Assert.True(Directory.GetFiles(Path.Combine(tmp.Path, "many"), "*.safetensors").Length > 3);
        using var one = Checkpoint.Open(Path.Combine(tmp.Path, "one"));
        using var many = Checkpoint.Open(Path.Combine(tmp.Path, "many"));
        Assert.Equal(one.Names.Order(), many.Names.Order());
        foreach (var n in one.Names) Assert.True(one.Load(n).equal(many.Load(n)).all().item<bool>());
        var dest = empty(16, 8, ScalarType.BFloat16);
        many.CopyInto("layer.3.weight", dest);
        Assert.True(dest.to_type(ScalarType.Float32).allclose(tensors["layer.3.weight"], 0.01, 0.05));
        var e = Assert.Throws<SafeTensorsException>(() => many.CopyInto("layer.3.weight", empty(8, 16)));
        Assert.Contains("[16, 8]", e.Message);
        Assert.Contains("[8, 16]", e.Message);
    }

    [Fact]
    public void PickleOnlyFolderIsRefusedWithAnExplanation()
    {
        using var tmp = TestPaths.NewTempDir("st");
        File.WriteAllBytes(tmp.File("pytorch_model.bin"), [0x80, 0x02]);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Open(tmp.Path));
        Assert.Contains("pickle", e.Message);
        Assert.Contains("pytorch_model.bin", e.Message);
        File.WriteAllText(tmp.File(Checkpoint.IndexName), "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\"}}");
        Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(tmp.Path));
    }

    /// <summary>A file with a header we write by hand: header JSON, then data bytes.</summary>
    static byte[] Raw(string header, int dataBytes, ulong? lengthOverride = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BitConverter.GetBytes(lengthOverride ?? (ulong)h.Length).CopyTo(b, 0);
        h.CopyTo(b, 8);
        return b;
    }

    public static TheoryData<string, string> Hostile => new()
    {
        { "header-beyond-file", "runs past the end" },
        { "huge-header", "exceeds" },
        { "zero-header", "header length is 0" },
        { "truncated", "shorter than the 8-byte" },
        { "not-json", "not valid JSON" },
        { "not-object", "must be a JSON object" },
        { "offset-out-of-range", "beyond the" },
        { "overlap", "overlaps" },
        { "wrong-length", "bytes but data_offsets span" },
        { "begin-after-end", "end before they begin" },
        { "negative-dim", "not a non-negative integer" },
        { "bad-dtype", "dtype \"F7\"" },
        { "hole", "gap" },
        { "trailing", "trailing bytes" },
        { "missing-offsets", "data_offsets" },
        { "duplicate", "twice" },
        { "overflow", "too large" },
        { "bad-metadata", "__metadata__" },
        { "bad-utf8", "UTF-8" },
    };

    [Theory, MemberData(nameof(Hostile))]
    public void HostileFilesGiveClearErrors(string kind, string expected)
    {
        using var tmp = TestPaths.NewTempDir("st");
        var path = tmp.File(kind + ".safetensors");
        byte[] bytes = kind switch
        {
            "header-beyond-file" => Raw("{}", 0, 1000),
            "huge-header" => Raw("{}", 0, 1UL << 40),
            "zero-header" => Raw("", 0, 0),
            "truncated" => [1, 2, 3],
            "not-json" => Raw("{\"a\": [", 0),
            "not-object" => Raw("[1,2]", 0),
            "offset-out-of-range" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
            "overlap" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
            "wrong-length" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
            "begin-after-end" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8),
            "negative-dim" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
            "bad-dtype" => Raw("{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "hole" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "trailing" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8),
            "missing-offsets" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
            "duplicate" => Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "overflow" => Raw("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8),
            "bad-metadata" => Raw("{\"__metadata__\":{\"k\":3}}", 0),
            "bad-utf8" => [.. BitConverter.GetBytes(2UL), 0xC3, 0x28],
            _ => throw new ArgumentException(kind),
        };
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<SafeTensorsException>(() => { using var _ = SafeTensorsFile.Open(path); });
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void RandomMutationsNeverCrashOrMisread()
    {
        using var tmp = TestPaths.NewTempDir("fuzz");
        SafeTensorsWriter.Write(tmp.File("good.safetensors"), new Dictionary<string, Tensor>
        {
            ["a"] = arange(12, ScalarType.Float32).reshape(3, 4), ["b"] = tensor(new long[] { 1, 2, 3 }),
        }, new Dictionary<string, string> { ["m"] = "v" });
        var good = File.ReadAllBytes(tmp.File("good.safetensors"));
        int headerLen = (int)BitConverter.ToUInt64(good, 0);
        var rng = new Random(1234);
        int accepted = 0, rejected = 0;
        for (int i = 0; i < 3000; i++)
        {
            var b = (byte[])good.Clone();
            switch (rng.Next(5))
            {
                case 0: b[rng.Next(8 + headerLen)] ^= (byte)(1 << rng.Next(8)); break;          // flip a header bit
                case 1: b = b[..rng.Next(b.Length)]; break;                                      // truncate
                case 2: BitConverter.GetBytes((ulong)rng.NextInt64(0, 1L << 40)).CopyTo(b, 0); break; // header length
                case 3: b[8 + rng.Next(headerLen)] = (byte)"0123456789[]{},:\"-"[rng.Next(18)]; break; // JSON punctuation
                default: b = [.. b, .. new byte[rng.Next(1, 16)]]; break;                      // trailing bytes
            }
            var path = tmp.File($"m{i % 8}.safetensors");
            File.WriteAllBytes(path, b);
            try
            {
                using var f = SafeTensorsFile.Open(path);
                foreach (var e in f.Entries) { using var t = f.Load(e.Name); Assert.Equal(e.ElementCount, t.numel()); }
                accepted++;
            }
            catch (SafeTensorsException) { rejected++; }
        }
        Assert.True(rejected > 2000, $"rejected {rejected}");
        Assert.True(accepted > 0, "some mutations (e.g. inside string values) keep the file valid");
    }

    [Fact]
    public void RealBf16CheckpointIsListed()
    {
        using var ckpt = Checkpoint.Open(Path.Combine(TestPaths.Artifacts, "tiny-random-llama-2"));
        Assert.Equal(21, ckpt.Names.Count);
        var emb = ckpt.Entry("model.embed_tokens.weight");
        Assert.Equal(DType.BF16, emb.DType);
        Assert.Equal(new long[] { 3000, 16 }, emb.Shape);
        Assert.True(ckpt.Contains("lm_head.weight"));
    }
}
