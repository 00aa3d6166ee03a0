using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Models;

namespace Superficial.Bench;

/// <summary>
/// Writes a random Llama checkpoint in BF16 as a Hugging Face folder (config.json, model-0000K-of-0000N.safetensors
/// with model.safetensors.index.json, as transformers saves Llama-2-7B, and the Llama 2 tokenizer files), streaming:
/// one block of one tensor at a time, so a 13.5 GB model is written with a few MB of memory. Every value comes from
/// a counter-based generator keyed by (seed, tensor name, block), so the bytes depend on the seed alone, not on the
/// thread count or on what was written before; a file already present at its exact size is kept (a killed run resumes).
/// Weights are uniform with the standard deviation of transformers' Llama init (0.02), norms 1. A perturbed model
/// (the "aligned" one) is the same base values plus uniform noise of standard deviation <see cref="Perturbation.Std"/>
/// from its own seed: a fine-tune of its base, as a real aligned model is, rather than an unrelated model.
/// </summary>
public static class RandomCheckpoint
{
    public const double InitStd = 0.02;
    const int BlockElements = 1 << 20;

    /// <summary>Noise added to every base value (norms included) to make the aligned model.</summary>
    public sealed record Perturbation(ulong Seed, double Std);

    /// <summary>A tensor of the checkpoint: HF name, shape, and whether it is a norm (initialised to 1).</summary>
    public sealed record TensorSpec(string Name, long[] Shape, bool Norm)
    {
        public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
        public long Bytes => Elements * 2;
    }

    /// <summary>The Llama tensors in transformers' state-dict order (untied: lm_head last).</summary>
    public static IReadOnlyList<TensorSpec> LlamaTensors(ModelConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        var list = new List<TensorSpec> { new("model.embed_tokens.weight", [c.VocabSize, h], false) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            var p = $"model.layers.{i}.";
            list.Add(new(p + "self_attn.q_proj.weight", [q, h], false));
            list.Add(new(p + "self_attn.k_proj.weight", [kv, h], false));
            list.Add(new(p + "self_attn.v_proj.weight", [kv, h], false));
            list.Add(new(p + "self_attn.o_proj.weight", [h, q], false));
            list.Add(new(p + "mlp.gate_proj.weight", [f, h], false));
            list.Add(new(p + "mlp.up_proj.weight", [f, h], false));
            list.Add(new(p + "mlp.down_proj.weight", [h, f], false));
            list.Add(new(p + "input_layernorm.weight", [h], true));
            list.Add(new(p + "post_attention_layernorm.weight", [h], true));
        }
        list.Add(new("model.norm.weight", [h], true));
        if (!c.TieWordEmbeddings) list.Add(new("lm_head.weight", [c.VocabSize, h], false));
        return list;
    }

    /// <summary>Bytes of weights of the checkpoint (BF16).</summary>
    public static long WeightBytes(ModelConfig c) => LlamaTensors(c).Sum(t => t.Bytes);

    /// <summary>The shards as transformers cuts them: tensors in order, a new file when the next would pass <paramref name="maxShardBytes"/>.</summary>
    public static IReadOnlyList<IReadOnlyList<TensorSpec>> Shards(ModelConfig c, long maxShardBytes)
    {
        var shards = new List<List<TensorSpec>> { new() };
        long current = 0;
        foreach (var t in LlamaTensors(c))
        {
            if (current > 0 && current + t.Bytes > maxShardBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(t);
            current += t.Bytes;
        }
        return shards;
    }

    public static string ShardName(int index, int count) => count == 1 ? "model.safetensors" : $"model-{index + 1:D5}-of-{count:D5}.safetensors";

    /// <summary>Bytes the folder's shard files take (headers included), for the disk check before writing.</summary>
    public static long FileBytes(ModelConfig c, long maxShardBytes) =>
        Shards(c, maxShardBytes).Sum(s => { var h = Header(s); return 8 + h.Length + s.Sum(t => t.Bytes); });

    /// <summary>
    /// Writes the folder (skipping shard files already there at their exact size); returns the bytes of shard files written now.
    /// </summary>
    public static long Write(string dir, ModelConfig config, ulong seed, Perturbation? perturbation, long maxShardBytes, string tokenizerDir)
    {
        Directory.CreateDirectory(dir);
        var shards = Shards(config, maxShardBytes);
        long written = 0;
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < shards.Count; s++)
        {
            var name = ShardName(s, shards.Count);
            foreach (var t in shards[s]) map[t.Name] = name;
            var header = Header(shards[s]);
            var path = Path.Combine(dir, name);
            long size = 8 + header.Length + shards[s].Sum(t => t.Bytes);
            if (File.Exists(path) && new FileInfo(path).Length == size) continue;
            var partial = path + ".partial";
            using (var fs = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 22))
            {
                fs.Write(BitConverter.GetBytes((ulong)header.Length));
                fs.Write(header);
                foreach (var t in Ordered(shards[s])) WriteTensor(fs, t, seed, perturbation);
            }
            File.Move(partial, path, overwrite: true);
            written += size;
        }
        var index = Path.Combine(dir, "model.safetensors.index.json");
        if (shards.Count > 1)
            File.WriteAllText(index, new JsonObject
            {
                ["metadata"] = new JsonObject { ["total_size"] = shards.Sum(s => s.Sum(t => t.Bytes)) },
                ["weight_map"] = new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        else if (File.Exists(index)) File.Delete(index);
        (config with { TorchDtype = "bfloat16" }).Save(Path.Combine(dir, "config.json"));
        foreach (var f in new[] { "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            if (File.Exists(Path.Combine(tokenizerDir, f)))
            {
                var to = Path.Combine(dir, f);
                if (File.Exists(to)) File.Delete(to);   // the shared artifacts are read-only, and so are their copies
                File.Copy(Path.Combine(tokenizerDir, f), to);
            }
        return written;
    }

    /// <summary>Within a file, tensors by name (as the safetensors library orders same-dtype tensors).</summary>
    static IEnumerable<TensorSpec> Ordered(IEnumerable<TensorSpec> shard) => shard.OrderBy(t => t.Name, StringComparer.Ordinal);

    /// <summary>The safetensors header, padded with spaces to a multiple of 8 bytes.</summary>
    static byte[] Header(IReadOnlyList<TensorSpec> shard)
    {
        var o = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var t in Ordered(shard))
        {
            o[t.Name] = new JsonObject
            {
                ["dtype"] = "BF16",
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + t.Bytes),
            };
            offset += t.Bytes;
        }
        var json = Encoding.UTF8.GetBytes(o.ToJsonString());
        var padded = new byte[(json.Length + 7) / 8 * 8];
        Array.Fill(padded, (byte)' ');
        json.CopyTo(padded, 0);
        return padded;
    }

    static void WriteTensor(Stream fs, TensorSpec t, ulong seed, Perturbation? perturbation)
    {
        long blocks = (t.Elements + BlockElements - 1) / BlockElements;
        int group = Math.Max(2, Environment.ProcessorCount * 2);
        var buffers = Enumerable.Range(0, group).Select(_ => new byte[BlockElements * 2]).ToArray();
        ulong key = Fnv(t.Name);
        for (long first = 0; first < blocks; first += group)
        {
            int n = (int)Math.Min(group, blocks - first);
            Parallel.For(0, n, i =>
            {
                long b = first + i;
                int count = (int)Math.Min(BlockElements, t.Elements - b * BlockElements);
                Fill(buffers[i].AsSpan(0, count * 2), t.Norm, seed, key, b, perturbation);
            });
            for (int i = 0; i < n; i++)
            {
                long b = first + i;
                int count = (int)Math.Min(BlockElements, t.Elements - b * BlockElements);
                fs.Write(buffers[i], 0, count * 2);
            }
        }
    }

    /// <summary>One block's BF16 values (little-endian): base value, plus the perturbation's noise when given.</summary>
    static void Fill(Span<byte> bytes, bool norm, ulong seed, ulong key, long block, Perturbation? perturbation)
    {
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes);
        // uniform on [-a, a] has standard deviation a / sqrt(3)
        float a = (float)(InitStd * Math.Sqrt(3)), pa = (float)((perturbation?.Std ?? 0) * Math.Sqrt(3));
        ulong s = Stream(seed, key, block), ps = perturbation is null ? 0 : Stream(perturbation.Seed, key, block);
        for (int i = 0; i < values.Length; i += 2)
        {
            // two values per 64-bit draw
            var (v0, v1) = norm ? (1f, 1f) : Uniforms(ref s, a);
            if (perturbation is not null)
            {
                var (n0, n1) = Uniforms(ref ps, pa);
                v0 += n0; v1 += n1;
            }
            values[i] = ToBf16(v0);
            if (i + 1 < values.Length) values[i + 1] = ToBf16(v1);
        }
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i < values.Length; i++) values[i] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(values[i]);
    }

    static ulong Stream(ulong seed, ulong key, long block) => Mix(Mix(seed ^ 0x5851F42D4C957F2DUL) ^ key ^ Mix((ulong)block + 0x9E3779B97F4A7C15UL));

    /// <summary>SplitMix64's output function.</summary>
    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Two values uniform on [-scale, scale) from SplitMix64's next output (24 bits each: exact in a float).</summary>
    static (float, float) Uniforms(ref ulong state, float scale)
    {
        state += 0x9E3779B97F4A7C15UL;
        ulong r = Mix(state);
        const float unit = 2f / (1 << 24);
        return (((r >> 40) * unit - 1f) * scale, (((r >> 16) & 0xFFFFFF) * unit - 1f) * scale);
    }

    /// <summary>Float to bfloat16, rounding to nearest even (as torch's conversion does for finite values).</summary>
    static ushort ToBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        bits += 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    /// <summary>FNV-1a of the tensor name: each tensor gets its own stream.</summary>
    static ulong Fnv(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var ch in Encoding.UTF8.GetBytes(s)) { h ^= ch; h *= 0x100000001B3UL; }
        return h;
    }
}
