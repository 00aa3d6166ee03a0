using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>
/// One .safetensors file, memory-mapped and read lazily: opening parses and validates the header only;
/// tensor bytes are copied from the mapping straight into the destination tensor when asked for, or aliased in place
/// (<see cref="TryMap"/>) where the caller keeps the stored dtype.
/// The header is untrusted input: every offset, length and shape is checked against the file before use.
/// (Little-endian hosts only, like the format itself.)
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    readonly FileMapping? mapping;
    readonly byte* basePtr;
    readonly Dictionary<string, TensorEntry> byName;

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<TensorEntry> Entries { get; }
    public long FileLength { get; }

    SafeTensorsFile(string path, long length, FileMapping? mapping, List<TensorEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path; FileLength = length; this.mapping = mapping; basePtr = mapping is null ? null : mapping.Pointer;
        Entries = entries; Metadata = metadata;
        byName = entries.ToDictionary(e => e.Name);
    }

    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.", path);
        long length;
        using (var probe = File.OpenRead(path)) length = probe.Length; // follows symbolic links (FileInfo.Length would give the link's own size)
        if (length < 8) throw new SafeTensorsException(path, null, $"file is {length} bytes, shorter than the 8-byte header length.");
        byte[] header;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong n = BitConverter.ToUInt64(len);
            if (n == 0) throw new SafeTensorsException(path, null, "header length is 0.");
            if (n > MaxHeaderBytes) throw new SafeTensorsException(path, null, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit.");
            if ((long)n > length - 8) throw new SafeTensorsException(path, null, $"header length {n} runs past the end of the {length}-byte file.");
            header = new byte[n];
            fs.ReadExactly(header);
        }
        long dataStart = 8 + header.Length;
        var (entries, metadata) = ParseHeader(path, header, dataStart, length - dataStart);
        return new SafeTensorsFile(path, length, length > dataStart ? new FileMapping(path, length) : null, entries, metadata);
    }

    static (List<TensorEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataStart, long dataLength)
    {
        string text;
        try { text = new UTF8Encoding(false, true).GetString(header); }
        catch (DecoderFallbackException) { throw new SafeTensorsException(path, null, "header is not valid UTF-8."); }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new SafeTensorsException(path, null, $"header is not valid JSON ({e.Message})."); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new SafeTensorsException(path, null, "header must be a JSON object.");
        var entries = new List<TensorEntry>();
        var metadata = new Dictionary<string, string>();
        var seen = new HashSet<string>();
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(prop.Name)) throw new SafeTensorsException(path, prop.Name, "appears twice in the header.");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object)
                    throw new SafeTensorsException(path, null, "__metadata__ must be an object of strings.");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw new SafeTensorsException(path, null, $"__metadata__ value of \"{m.Name}\" must be a string.");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                        throw new SafeTensorsException(path, null, $"__metadata__ key \"{m.Name}\" appears twice.");
                }
                continue;
            }
            entries.Add(ParseEntry(path, prop, dataStart, dataLength));
        }
        // Ranges must tile the data section exactly: no overlaps (aliasing) and no holes (hidden payloads).
        long expect = dataStart;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < expect) throw new SafeTensorsException(path, e.Name, $"byte range [{e.Begin - dataStart}, {e.End - dataStart}) overlaps another tensor.");
            if (e.Begin > expect) throw new SafeTensorsException(path, e.Name, $"leaves a gap of {e.Begin - expect} unindexed bytes before it in the data section.");
            expect = e.End;
        }
        if (expect != dataStart + dataLength)
            throw new SafeTensorsException(path, null, $"the data section has {dataStart + dataLength - expect} trailing bytes no tensor describes.");
        return (entries, metadata);
    }

    static TensorEntry ParseEntry(string path, JsonProperty prop, long dataStart, long dataLength)
    {
        var name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new SafeTensorsException(path, name, "entry must be an object with dtype, shape and data_offsets.");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new SafeTensorsException(path, name, "missing \"dtype\" (a string such as \"F32\").");
        var dtype = DTypes.Parse(dt.GetString()!, path, name);
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsException(path, name, "missing \"shape\" (a list of non-negative integers).");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw new SafeTensorsException(path, name, $"shape entry {d.GetRawText()} is not a non-negative integer.");
            shape.Add(dim);
        }
        if (shape.Count > 16) throw new SafeTensorsException(path, name, $"shape has {shape.Count} dimensions (at most 16 supported).");
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafeTensorsException(path, name, "missing \"data_offsets\" ([begin, end] within the data section).");
        long begin = Offset(off[0]), end = Offset(off[1]);
        long Offset(JsonElement e) => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var x) && x >= 0 ? x
            : throw new SafeTensorsException(path, name, $"data_offsets entry {e.GetRawText()} is not a non-negative integer.");
        if (begin > end) throw new SafeTensorsException(path, name, $"data_offsets [{begin}, {end}] end before they begin.");
        if (end > dataLength) throw new SafeTensorsException(path, name, $"data_offsets end {end} lies beyond the {dataLength}-byte data section.");
        long bytes;
        try
        {
            bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * DTypes.SizeOf(dtype));
        }
        catch (OverflowException) { throw new SafeTensorsException(path, name, "shape is too large (element count overflows)."); }
        if (bytes != end - begin)
            throw new SafeTensorsException(path, name,
                $"shape [{string.Join(", ", shape)}] x {DTypes.Name(dtype)} is {bytes} bytes but data_offsets span {end - begin}.");
        return new TensorEntry(name, dtype, shape.ToArray(), dataStart + begin, dataStart + end);
    }

    public bool Contains(string name) => byName.ContainsKey(name);

    public TensorEntry Entry(string name) => byName.TryGetValue(name, out var e) ? e
        : throw new SafeTensorsException(Path, name, "no such tensor in this file.");

    /// <summary>A new CPU tensor with the stored values, converted to <paramref name="dtype"/> when given.</summary>
    public Tensor Load(string name, ScalarType? dtype = null)
    {
        var e = Entry(name);
        var t = empty(e.Shape, DTypes.ToTorch(e.DType));
        CopyRaw(e, t);
        if (dtype is null || dtype == t.dtype) return t;
        var converted = t.to_type(dtype.Value);
        t.Dispose();
        return converted;
    }

    /// <summary>
    /// Copies a stored tensor into an existing CPU tensor of the same shape (e.g. a model parameter),
    /// converting dtype if needed; at most one source-dtype temporary exists at a time.
    /// </summary>
    public void CopyInto(string name, Tensor destination)
    {
        var e = Entry(name);
        if (!e.Shape.SequenceEqual(destination.shape))
            throw new SafeTensorsException(Path, name,
                $"stored shape [{string.Join(", ", e.Shape)}] does not match the destination [{string.Join(", ", destination.shape)}].");
        using var noGrad = no_grad();
        var source = DTypes.ToTorch(e.DType);
        if (destination.dtype == source && destination.is_contiguous() && destination.device.type == TorchSharp.DeviceType.CPU)
        {
            CopyRaw(e, destination);
            return;
        }
        using var tmp = empty(e.Shape, source);
        CopyRaw(e, tmp);
        destination.copy_(tmp);
    }

    /// <summary>
    /// A CPU tensor that reads the stored bytes in place (no copy): the file is mapped copy-on-write, so writing to
    /// the tensor never changes the file, and the mapping outlives this object for as long as the tensor lives. Null
    /// when the bytes cannot be aliased (an empty tensor, or data not aligned to its element size); then use <see cref="Load"/>.
    /// </summary>
    public Tensor? TryMap(string name)
    {
        var e = Entry(name);
        return mapping?.Alias(e.Begin, e.ByteLength, DTypes.ToTorch(e.DType), e.Shape);
    }

    /// <summary>memcpy from the mapping into a contiguous CPU tensor of the stored dtype, in chunks under 2 GB (Span's limit).</summary>
    void CopyRaw(TensorEntry e, Tensor destination)
    {
        if (e.ByteLength == 0) return;
        var src = basePtr + e.Begin;
        foreach (var (chunk, bytes) in TensorBytes.Chunks(destination))
        {
            fixed (byte* dst = chunk.bytes) Buffer.MemoryCopy(src, dst, bytes, bytes);
            src += bytes;
            chunk.Dispose();
        }
    }

    public void Dispose()
    {
        mapping?.Dispose();
    }
}
