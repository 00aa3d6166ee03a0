using System.Text.Json.Nodes;
using Superficial.Bench;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using static TorchSharp.torch;

namespace Superficial.Tests.Bench;

/// <summary>
/// The seven-b benchmark's pieces on small shapes: the random BF16 checkpoint writer (a sharded HF folder the real
/// loader reads in place, bytes fixed by the seed, resumable) and the peak-memory measurement of a child process.
/// </summary>
public class SevenBBenchTests
{
    // the 7B layout (untied head, Llama 2 vocabulary) at a width that writes in milliseconds
    static readonly ModelConfig Small = ModelConfig.Llama(vocabSize: 32000, hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 160,
        maxPositions: 256, tieWordEmbeddings: false, bosId: 1, eosId: 2);
    const long ShardBytes = 3_000_000;   // the embedding (4.1 MB) and the head each get a shard; the layers share one
    static string Tokenizer => Path.Combine(TestPaths.Artifacts, "llama2");

    static Dictionary<string, byte[]> Shards(string dir) =>
        Directory.GetFiles(dir, "*.safetensors").ToDictionary(Path.GetFileName, File.ReadAllBytes)!;

    [Fact]
    public void WritesAShardedHfFolderTheLoaderReadsInPlace()
    {
        using var dir = TestPaths.NewTempDir("randckpt");
        long written = RandomCheckpoint.Write(dir.Path, Small, 7, null, ShardBytes, Tokenizer);
        var tensors = RandomCheckpoint.LlamaTensors(Small);
        long weights = tensors.Sum(t => t.Bytes);
        Assert.Equal(RandomCheckpoint.FileBytes(Small, ShardBytes), written);
        Assert.Equal(2 + 2 * 9 + 1, tensors.Count);

        // the index names every tensor once, in the file that holds it, and the total size of the weights
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "model.safetensors.index.json")))!;
        Assert.Equal(weights, index["metadata"]!["total_size"]!.GetValue<long>());
        var map = index["weight_map"]!.AsObject();
        Assert.Equal(tensors.Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal), map.Select(kv => kv.Key));
        var files = map.Select(kv => kv.Value!.GetValue<string>()).Distinct().Order().ToArray();
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"], files);
        Assert.Equal(files, Directory.GetFiles(dir.Path, "*.safetensors").Select(Path.GetFileName).Order().ToArray());
        foreach (var (name, file) in map)
        {
            using var st = SafeTensorsFile.Open(Path.Combine(dir.Path, file!.GetValue<string>()));
            var e = st.Entry(name);
            Assert.Equal(tensors.Single(t => t.Name == name).Shape, e.Shape.Select(d => (long)d));
        }

        var config = ModelConfig.Load(Path.Combine(dir.Path, "config.json"));
        Assert.Equal(("llama", "bfloat16", false), (config.ModelType, config.TorchDtype, config.TieWordEmbeddings));
        using var model = CausalLM.Load(dir.Path, ScalarType.BFloat16);
        Assert.Equal(weights, model.MappedBytes);   // BF16 run in BF16: every weight read in place from the shards
        var tok = TextTokenizer.Load(dir.Path);
        var ids = tok.Encode("How many apples are in three baskets?", true);
        using var noGrad = no_grad();
        using var hidden = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0));
        using var logits = model.Logits(hidden);
        Assert.Equal(32000, logits.shape[^1]);
        Assert.True(logits.isfinite().all().item<bool>());

        // uniform weights of the init's standard deviation; norms 1
        var q = model.named_parameters().Single(p => p.name.EndsWith("layers.0.self_attn.q_proj.weight")).parameter.to_type(ScalarType.Float32);
        Assert.InRange(q.std().item<float>(), 0.019, 0.021);
        Assert.InRange(q.abs().max().item<float>(), 0.033, 0.0348);
        Assert.True(model.named_parameters().Single(p => p.name.EndsWith("model.norm.weight")).parameter.eq(1).all().item<bool>());
    }

    [Fact]
    public void BytesFollowTheSeedAloneAndTheAlignedModelIsTheBasePerturbed()
    {
        using var a = TestPaths.NewTempDir("randckpt-a");
        using var b = TestPaths.NewTempDir("randckpt-b");
        using var c = TestPaths.NewTempDir("randckpt-c");
        using var aligned = TestPaths.NewTempDir("randckpt-aligned");
        RandomCheckpoint.Write(a.Path, Small, 7, null, ShardBytes, Tokenizer);
        RandomCheckpoint.Write(b.Path, Small, 7, null, ShardBytes, Tokenizer);
        RandomCheckpoint.Write(c.Path, Small, 8, null, ShardBytes, Tokenizer);
        RandomCheckpoint.Write(aligned.Path, Small, 7, new RandomCheckpoint.Perturbation(9, 0.002), ShardBytes, Tokenizer);
        var (sa, sb, sc) = (Shards(a.Path), Shards(b.Path), Shards(c.Path));
        Assert.All(sa, kv => Assert.Equal(kv.Value, sb[kv.Key]));
        Assert.All(sa, kv => Assert.NotEqual(kv.Value, sc[kv.Key]));

        using var m0 = CausalLM.Load(a.Path, ScalarType.BFloat16);
        using var m1 = CausalLM.Load(aligned.Path, ScalarType.BFloat16);
        var p1 = m1.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p0) in m0.named_parameters())
        {
            using var d = (p1[name].to_type(ScalarType.Float32) - p0.to_type(ScalarType.Float32)).abs();
            // noise uniform on +-0.002 sqrt(3), plus BF16 rounding of values up to 1 (norms)
            Assert.True(d.max().item<float>() < 0.0035 + 0.004, $"{name}: the aligned model is not the base perturbed ({d.max().item<float>()})");
            Assert.True(d.mean().item<float>() > 0.0005, $"{name}: the aligned model equals the base");
        }
    }

    [Fact]
    public void AWriteResumesKeepingCompleteShardsAndRewritingATruncatedOne()
    {
        using var dir = TestPaths.NewTempDir("randckpt-resume");
        RandomCheckpoint.Write(dir.Path, Small, 7, null, ShardBytes, Tokenizer);
        var before = Shards(dir.Path);
        var second = Path.Combine(dir.Path, "model-00002-of-00003.safetensors");
        using (var fs = new FileStream(second, FileMode.Open)) fs.SetLength(fs.Length / 2);   // as a killed run leaves it
        long written = RandomCheckpoint.Write(dir.Path, Small, 7, null, ShardBytes, Tokenizer);
        Assert.Equal(before[Path.GetFileName(second)].Length, written);   // only the truncated file was written again
        var after = Shards(dir.Path);
        Assert.All(before, kv => Assert.Equal(kv.Value, after[kv.Key]));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.partial"));
    }

    [Fact]
    public void PeakResidentMemoryOfAChildIsMeasured()
    {
        // a child that touches 300 MB and holds it briefly, and one that allocates nothing
        var big = ChildRun.Run("python3", ["-c", "import time; b = bytearray(300 * 1024 * 1024); time.sleep(0.5); print(len(b))"]);
        var idle = ChildRun.Run("python3", ["-c", "import time; time.sleep(0.5)"]);
        Assert.Equal(0, big.ExitCode);
        Assert.Equal("314572800", big.Stdout.Trim());
        Assert.InRange(big.PeakRssBytes, 300L << 20, 400L << 20);
        Assert.InRange(big.MaxAnonBytes, 295L << 20, 400L << 20);
        Assert.InRange(idle.PeakRssBytes, 1, 60L << 20);
        Assert.True(big.Samples > 0 && big.Seconds >= 0.5);
        Assert.Equal(3, ChildRun.Run("python3", ["-c", "import sys; sys.exit(3)"]).ExitCode);
    }
}
