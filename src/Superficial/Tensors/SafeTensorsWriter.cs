using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.IO;
using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>
/// Writes safetensors files: header padded with spaces so the data starts at a multiple of 64 bytes; tensors whose
/// bytes are a multiple of 64 first, then the rest, each part ordered by element size then name (so tensors of whole
/// cache lines start at a multiple of 64, every other one at a multiple of its element size, and the same input gives
/// the same bytes); data streamed tensor by tensor. A model's weights mapped from such a file start cache lines, as
/// freshly allocated ones do, so <see cref="SkinnyLinear"/>'s batch-1 walk reads them with plain loads at both tile
/// widths. Files are written under a temporary name and renamed into place.
/// </summary>
public static class SafeTensorsWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var dup = list.GroupBy(t => t.Key).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"{path}: tensor name \"{dup.Key}\" given twice.");
        var ordered = list.OrderBy(t => Bytes(t.Value) % 64 == 0 ? 0 : 1)
            .ThenByDescending(t => DTypes.SizeOf(DTypes.FromTorch(t.Value.dtype))).ThenBy(t => t.Key, StringComparer.Ordinal).ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.OrderBy(m => m.Key, StringComparer.Ordinal)
                .Select(m => KeyValuePair.Create(m.Key, (JsonNode?)JsonValue.Create(m.Value))));
        long offset = 0;
        foreach (var (name, t) in ordered)
        {
            var dtype = DTypes.FromTorch(t.dtype);
            long bytes = Bytes(t);
            header[name] = new JsonObject
            {
                ["dtype"] = DTypes.Name(dtype),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        int padded = (json.Length + 8 + 63) / 64 * 64 - 8;   // 8 bytes of length, then the header: the data starts at a multiple of 64
        AtomicFile.Write(path, tmp =>
        {
            using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            fs.Write(BitConverter.GetBytes((ulong)padded));
            fs.Write(json);
            for (int i = json.Length; i < padded; i++) fs.WriteByte((byte)' ');
            foreach (var (_, t) in ordered) WriteData(fs, t);
        });
    }

    /// <summary>A tensor's bytes in the file.</summary>
    static long Bytes(Tensor t) => t.numel() * DTypes.SizeOf(DTypes.FromTorch(t.dtype));

    static void WriteData(Stream fs, Tensor t)
    {
        if (t.numel() == 0) return;
        using var scope = NewDisposeScope();
        var c = t.device.type == TorchSharp.DeviceType.CPU ? t.detach().contiguous() : t.detach().cpu().contiguous();
        foreach (var (chunk, _) in TensorBytes.Chunks(c)) fs.Write(chunk.bytes);
    }

    /// <summary>
    /// A model folder's weights in the HF layout: "model.safetensors" when everything fits in one shard,
    /// else model-0000K-of-0000N.safetensors plus model.safetensors.index.json.
    /// </summary>
    public static void WriteCheckpoint(string folder, IEnumerable<KeyValuePair<string, Tensor>> tensors, long maxShardBytes = 5L << 30,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(folder);
        var list = tensors.ToList();
        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long current = 0, total = 0;
        foreach (var kv in list)
        {
            long bytes = kv.Value.numel() * kv.Value.element_size();
            if (current > 0 && current + bytes > maxShardBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(kv);
            current += bytes; total += bytes;
        }
        var index = Path.Combine(folder, Checkpoint.IndexName);
        if (shards.Count == 1)
        {
            Write(Path.Combine(folder, "model.safetensors"), list, metadata);
            if (File.Exists(index)) File.Delete(index);
            return;
        }
        var map = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            var name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(Path.Combine(folder, name), shards[i], metadata);
            foreach (var kv in shards[i]) map[kv.Key] = name;
        }
        AtomicFile.WriteAllText(index, new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = map,
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(single)) File.Delete(single);
    }
}
