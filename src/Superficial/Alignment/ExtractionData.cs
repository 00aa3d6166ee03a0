using System.Text.Json.Nodes;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>One chunk file of an extraction folder.</summary>
public sealed record ChunkRef(int Folder, string Path, int Positions);

/// <summary>A batch of training positions: base hidden states and the aligned model's top-k (ids, logits).</summary>
public sealed class PositionBatch(Tensor hidden, Tensor topIds, Tensor topLogits) : IDisposable
{
    public Tensor Hidden { get; } = hidden;       // [n, H] float32
    public Tensor TopIds { get; } = topIds;       // [n, k] int64
    public Tensor TopLogits { get; } = topLogits; // [n, k] float32
    public int Count => (int)Hidden.shape[0];
    public void Dispose() { Hidden.Dispose(); TopIds.Dispose(); TopLogits.Dispose(); }
}

/// <summary>
/// The positions of one or several extraction folders (e.g. one per task, or the outputs of N workers
/// that share a folder), checked to come from the same base model. Positions are streamed from the
/// chunk files in shuffled batches through a bounded buffer, so memory does not grow with the data.
/// Held-out positions are whole sequences (5% by default), chosen by a seeded hash of (folder, sequence),
/// so tokens of one answer never sit on both sides of the split.
/// </summary>
public sealed class ExtractionData
{
    public IReadOnlyList<string> Folders { get; }
    public IReadOnlyList<JsonObject> Manifests { get; }
    public IReadOnlyList<ChunkRef> Chunks { get; }
    public int HiddenSize { get; }
    public int VocabSize { get; }
    /// <summary>The smallest top-k stored across folders (training may use fewer).</summary>
    public int TopK { get; }
    public string BaseIdentity { get; }
    public long Positions => Chunks.Sum(c => (long)c.Positions);

    ExtractionData(IReadOnlyList<string> folders, IReadOnlyList<JsonObject> manifests, IReadOnlyList<ChunkRef> chunks,
        int hidden, int vocab, int topK, string baseId)
    {
        Folders = folders; Manifests = manifests; Chunks = chunks; HiddenSize = hidden; VocabSize = vocab; TopK = topK; BaseIdentity = baseId;
    }

    public static ExtractionData Open(IReadOnlyList<string> folders)
    {
        if (folders.Count == 0) throw new ArgumentException("give at least one extraction folder.");
        var manifests = new List<JsonObject>();
        var chunks = new List<ChunkRef>();
        int hidden = -1, vocab = -1, topK = int.MaxValue;
        string? baseId = null, first = null;
        for (int f = 0; f < folders.Count; f++)
        {
            var dir = folders[f];
            var path = System.IO.Path.Combine(dir, Extraction.ManifestName);
            if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: no {Extraction.ManifestName}; is this an extraction folder (superficial extract --out)?");
            var m = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
            if ((string?)m["format"] != Extraction.Format) throw new InvalidDataException($"{path}: format is not \"{Extraction.Format}\".");
            var b = m["base"]!.AsObject();
            int h = (int)b["hidden_size"]!, v = (int)b["vocab_size"]!;
            var id = (string)b["identity"]!;
            if (baseId is null) { baseId = id; hidden = h; vocab = v; first = dir; }
            else if (id != baseId || h != hidden || v != vocab)
                throw new InvalidDataException(
                    $"{dir} was extracted with a different base model (identity {id}, hidden {h}, vocab {v}) than {first} " +
                    $"(identity {baseId}, hidden {hidden}, vocab {vocab}); a head is trained on one base model.");
            topK = Math.Min(topK, (int)m["settings"]!["top_k"]!);
            int expected = (int)m["chunks"]!;
            var present = Enumerable.Range(0, expected).Where(c => File.Exists(Extraction.ChunkPath(dir, c, ".safetensors"))).ToList();
            if (present.Count < expected)
                throw new InvalidDataException(
                    $"{dir}: extraction incomplete, {expected - present.Count} of {expected} chunks missing " +
                    "(re-run superficial extract with the same arguments to finish, or wait for the other workers).");
            foreach (var c in present)
            {
                var file = Extraction.ChunkPath(dir, c, ".safetensors");
                using var st = SafeTensorsFile.Open(file);
                var e = st.Entry("hidden");
                if (e.Shape.Length != 2 || e.Shape[1] != hidden)
                    throw new InvalidDataException($"{file}: \"hidden\" has shape [{string.Join(", ", e.Shape)}], expected [N, {hidden}].");
                chunks.Add(new ChunkRef(f, file, (int)e.Shape[0]));
            }
            manifests.Add(m);
        }
        return new ExtractionData(folders, manifests, chunks, hidden, vocab, topK, baseId!);
    }

    /// <summary>A seed for System.Random from several integers, the same in every process (splitmix64 finaliser).</summary>
    public static int MixSeed(int a, int b, int c)
    {
        ulong x = (ulong)(uint)a * 0x9E3779B97F4A7C15UL ^ ((ulong)(uint)b + 0x632BE59BD9B4E019UL) * 0xC2B2AE3D27D4EB4FUL
                  ^ ((ulong)(uint)c + 0x85157AF5UL) * 0x165667B19E3779F9UL;
        x ^= x >> 30; x *= 0xBF58476D1CE4E5B9UL; x ^= x >> 27; x *= 0x94D049BB133111EBUL; x ^= x >> 31;
        return (int)(x & 0x7FFFFFFF);
    }

    /// <summary>Whether a sequence is held out (deterministic in the seed).</summary>
    public static bool IsHeldOut(int folder, int sequence, double fraction, int seed)
    {
        ulong x = (ulong)(uint)folder * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)sequence * 0xC2B2AE3D27D4EB4FUL ^ (ulong)(uint)seed * 0x165667B19E3779F9UL;
        x ^= x >> 33; x *= 0xFF51AFD7ED558CCDUL; x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53UL; x ^= x >> 33;
        return x % 1_000_000 < (ulong)(fraction * 1_000_000);
    }

    /// <summary>
    /// Batches of the training (or held-out) positions. Training order is shuffled per epoch: chunk order,
    /// then positions within a buffer of up to <paramref name="bufferPositions"/>; <paramref name="orderSeed"/> (default
    /// <paramref name="seed"/>) seeds that order, <paramref name="seed"/> the split.
    /// </summary>
    public IEnumerable<PositionBatch> Batches(bool heldOut, int batchSize, int topK, double heldOutFraction, int seed, int epoch,
        bool shuffle, int bufferPositions = 16384, int? orderSeed = null, bool tailSplit = false)
    {
        if (topK > TopK) throw new ArgumentException($"`TopK` {topK} exceeds the {TopK} logits stored by the extraction.");
        // Not HashCode.Combine: .NET seeds it per process, so the order (and the head) would change from run to run.
        var rng = new Random(MixSeed(orderSeed ?? seed, epoch, heldOut ? 1 : 0));
        var order = Chunks.ToArray();
        if (shuffle) rng.Shuffle(order);
        var pool = new List<PositionBatch>();
        int pooled = 0;
        // with tailSplit the held-out positions are the last fraction in storage order (folders, then chunks)
        long cut = tailSplit ? (long)(Positions * (1 - heldOutFraction)) : -1;
        var offsets = new Dictionary<ChunkRef, long>();
        long offset = 0;
        foreach (var c in Chunks) { offsets[c] = offset; offset += c.Positions; }
        foreach (var chunk in order)
        {
            var part = LoadChunk(chunk, heldOut, topK, heldOutFraction, seed, tailSplit ? (offsets[chunk], cut) : null);
            if (part is null) continue;
            pool.Add(part); pooled += part.Count;
            if (pooled < bufferPositions) continue;
            foreach (var b in Drain(pool, batchSize, shuffle, rng, keepRemainder: true)) yield return b;
            pooled = pool.Sum(p => p.Count);
        }
        foreach (var b in Drain(pool, batchSize, shuffle, rng, keepRemainder: false)) yield return b;
    }

    static IEnumerable<PositionBatch> Drain(List<PositionBatch> pool, int batchSize, bool shuffle, Random rng, bool keepRemainder)
    {
        if (pool.Count == 0) yield break;
        var h = cat(pool.Select(p => p.Hidden).ToList(), 0);
        var ids = cat(pool.Select(p => p.TopIds).ToList(), 0);
        var lg = cat(pool.Select(p => p.TopLogits).ToList(), 0);
        foreach (var p in pool) p.Dispose();
        pool.Clear();
        int n = (int)h.shape[0];
        var perm = Enumerable.Range(0, n).ToArray();
        if (shuffle) rng.Shuffle(perm);
        var permT = tensor(perm.Select(i => (long)i).ToArray());
        int full = keepRemainder ? n / batchSize * batchSize : n;
        for (int s = 0; s < full; s += batchSize)
        {
            var idx = permT.narrow(0, s, Math.Min(batchSize, full - s));
            yield return new PositionBatch(h.index_select(0, idx), ids.index_select(0, idx), lg.index_select(0, idx));
        }
        if (full < n)
        {
            var rest = permT.narrow(0, full, n - full);
            pool.Add(new PositionBatch(h.index_select(0, rest), ids.index_select(0, rest), lg.index_select(0, rest)));
        }
        h.Dispose(); ids.Dispose(); lg.Dispose(); permT.Dispose();
    }

    PositionBatch? LoadChunk(ChunkRef chunk, bool heldOut, int topK, double fraction, int seed, (long Offset, long Cut)? tail = null)
    {
        using var st = SafeTensorsFile.Open(chunk.Path);
        using var seq = st.Load("sequence", ScalarType.Int32);
        var seqs = seq.data<int>().ToArray();
        var rows = Enumerable.Range(0, seqs.Length)
            .Where(i => (tail is { } t ? t.Offset + i >= t.Cut : IsHeldOut(chunk.Folder, seqs[i], fraction, seed)) == heldOut)
            .Select(i => (long)i).ToArray();
        if (rows.Length == 0) return null;
        using var idx = tensor(rows);
        using var h = st.Load("hidden", ScalarType.Float32);
        using var ids = st.Load("topk_ids", ScalarType.Int64);
        using var lg = st.Load("topk_logits", ScalarType.Float32);
        return new PositionBatch(h.index_select(0, idx), ids.narrow(1, 0, topK).index_select(0, idx), lg.narrow(1, 0, topK).index_select(0, idx));
    }
}
