using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Superficial.Generation;
using Superficial.IO;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using static TorchSharp.torch;


namespace Superficial.Alignment;

/// <summary>One extraction prompt: an id and its two forms (raw for the base model, user turn for the aligned one).</summary>
public sealed record ExtractionPrompt(string Id, PromptSpec Spec);

/// <summary>Settings of an extraction run. Everything here is recorded in the manifest.</summary>
public sealed record ExtractionOptions
{
    public int TopK { get; init; } = 500;
    public int MaxNewTokens { get; init; } = 512;
    /// <summary>Prompts decoded together (continuous batching); null chooses it from <see cref="MaxMemory"/>.</summary>
    public int? BatchSize { get; init; }
    /// <summary>
    /// Memory the run may use in bytes (null: 90 % of the machine's available memory). When the base and aligned models
    /// do not both fit beside the batch, they run one at a time per chunk (the aligned model generates the chunk, then
    /// the base model reads it).
    /// </summary>
    public long? MaxMemory { get; init; }
    /// <summary>Prompts per chunk file: the unit of resumption and of memory (a chunk is held in memory until written).</summary>
    public int ChunkSize { get; init; } = 32;
    /// <summary>Overrides every prompt's response prefix when set (e.g. "Answer:").</summary>
    public string? ResponsePrefix { get; init; }
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Store base hidden states as F16 (default, half the disk) or F32.</summary>
    public bool HiddenF32 { get; init; }
    /// <summary>Chat template of the aligned model by family name or .jinja file; null = its tokenizer_config's.</summary>
    public string? ChatTemplate { get; init; }
    public ShardSpec Shard { get; init; } = ShardSpec.Single;
    /// <summary>Compute dtype of both models (null: the checkpoint's, float32 on CPU).</summary>
    public ScalarType? Dtype { get; init; }
    /// <summary>Keep the last tokens of a prompt too long for a model's context (with a warning) instead of refusing it.</summary>
    public bool TruncatePrompts { get; init; }
}

/// <summary>What one extraction run did.</summary>
public sealed record ExtractionSummary(int ChunksTotal, int ChunksDone, int ChunksSkipped, long Positions, long GeneratedTokens, double Seconds);

/// <summary>Progress of extraction: chunks of this worker done out of its total, and prompts within the chunk.</summary>
public readonly record struct ExtractionProgress(int ChunksDone, int ChunksTotal, int PromptsDone, int PromptsTotal, long Positions);

/// <summary>
/// Step 1 of the method. The aligned model generates greedily from its chat template; the base model
/// then reads the raw prompt followed by exactly those tokens in one teacher-forced forward per batch.
/// For every generated token we keep the aligned model's top-k logits and ids and the base model's final
/// hidden state at the position that predicts that token. Results go to chunk files (safetensors +
/// JSONL), each written atomically, so a killed run resumes where it stopped and N workers can share
/// the prompts (<see cref="ShardSpec"/>).
/// </summary>
public static class Extraction
{
    public const string ManifestName = "manifest.json";
    public const string Format = "superficial-extraction";

    /// <param name="log">Receives warnings (prompts truncated with <see cref="ExtractionOptions.TruncatePrompts"/>).</param>
    /// <param name="note">Receives the plan: the batch and whether the models run together or one at a time.</param>
    public static ExtractionSummary Run(string baseDir, string alignedDir, IReadOnlyList<ExtractionPrompt> prompts, string promptSource,
        string outDir, ExtractionOptions options, IProgress<ExtractionProgress>? progress = null, CancellationToken ct = default,
        Action<string>? log = null, Action<string>? note = null)
    {
        if (prompts.Count == 0) throw new ArgumentException("no prompts to extract from.");
        if (options.TopK < 1) throw new ArgumentException("`TopK` must be at least 1.");
        var baseTok = TextTokenizer.Load(baseDir);
        var alignedTok = TextTokenizer.Load(alignedDir);
        var baseConfig = ModelConfig.Load(Path.Combine(baseDir, "config.json"));
        var alignedConfig = ModelConfig.Load(Path.Combine(alignedDir, "config.json"));
        CheckSharedVocabulary(baseDir, baseConfig, baseTok, alignedDir, alignedConfig, alignedTok);
        if (options.TopK > baseConfig.VocabSize) throw new ArgumentException($"`TopK` {options.TopK} exceeds the vocabulary ({baseConfig.VocabSize}).");
        var chat = alignedTok.GetChatTemplate(options.ChatTemplate);
        var encoded = EncodePrompts(prompts, baseTok, baseConfig, alignedTok, alignedConfig, chat, options, log);

        Directory.CreateDirectory(Path.Combine(outDir, "chunks"));
        var manifest = BuildManifest(baseDir, baseConfig, alignedDir, alignedConfig, chat, prompts, promptSource, options);
        if (options.TruncatePrompts) manifest["settings"]!["truncate_prompts"] = true;
        WriteOrCheckManifest(outDir, manifest);

        int chunks = (prompts.Count + options.ChunkSize - 1) / options.ChunkSize;
        var mine = Enumerable.Range(0, chunks).Where(options.Shard.Owns).ToArray();
        var todo = mine.Where(c => !File.Exists(ChunkPath(outDir, c, ".safetensors"))).ToArray();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        long positions = 0, tokens = 0;
        if (todo.Length > 0)
        {
            var plan = ExtractionPlan.Choose(baseConfig, alignedConfig, encoded, todo, options, prompts.Count);
            note?.Invoke(plan.Describe());
            using var writer = new ShardWriter();
            int done = mine.Length - todo.Length;
            // a chunk counts as done once handed to the writer (which writes it even if the run is then cancelled)
            void Enqueued(ShardWriter w, ShardWriter.Chunk chunk)
            {
                w.Enqueue(chunk);
                positions += chunk.Positions; tokens += chunk.Positions;
                progress?.Report(new ExtractionProgress(++done, mine.Length, 0, 0, positions));
            }
            void Prompts(int finished, int size) => progress?.Report(new ExtractionProgress(done, mine.Length, finished, size, positions));
            if (plan.Together)
            {
                using var baseModel = CausalLM.Load(baseDir, options.Dtype);
                using var alignedModel = CausalLM.Load(alignedDir, options.Dtype);
                // every chunk's prompts in one queue: a slot freed near a chunk's end takes the next chunk's first prompt
                var queue = todo.SelectMany(c => ChunkPrompts(c, options.ChunkSize, prompts.Count)).Select(i => (i, encoded.Chat[i])).ToArray();
                Decode(alignedModel, alignedTok, queue, plan.Batch, baseConfig.VocabSize, options, ct, Prompts, (c, decoded) =>
                    Enqueued(writer, Assemble(baseModel, encoded, chat, prompts, c, decoded, outDir, options, plan.Batch)));
            }
            else
                foreach (var c in todo)
                {
                    // one model at a time: the aligned model generates the chunk, is freed, then the base model reads it
                    DecodedPrompt[] decoded;
                    using (var alignedModel = CausalLM.Load(alignedDir, options.Dtype))
                    {
                        decoded = [];
                        var queue = ChunkPrompts(c, options.ChunkSize, prompts.Count).Select(i => (i, encoded.Chat[i])).ToArray();
                        Decode(alignedModel, alignedTok, queue, plan.Batch, baseConfig.VocabSize, options, ct, Prompts, (_, d) => decoded = d);
                    }
                    using var baseModel = CausalLM.Load(baseDir, options.Dtype);
                    Enqueued(writer, Assemble(baseModel, encoded, chat, prompts, c, decoded, outDir, options, plan.Batch));
                }
            writer.Complete();
        }
        return new ExtractionSummary(mine.Length, todo.Length, mine.Length - todo.Length, positions, tokens, watch.Elapsed.TotalSeconds);
    }

    static IEnumerable<int> ChunkPrompts(int chunk, int chunkSize, int promptCount) =>
        Enumerable.Range(chunk * chunkSize, Math.Min(chunkSize, promptCount - chunk * chunkSize));

    /// <summary>Decodes the queue with continuous batching; hands over each chunk's prompts (in prompt order) once all of them are done.</summary>
    static void Decode(CausalLM aligned, TextTokenizer tok, IReadOnlyList<(int Index, IReadOnlyList<int> Ids)> queue, int batch, int baseVocab,
        ExtractionOptions o, CancellationToken ct, Action<int, int> promptDone, Action<int, DecodedPrompt[]> chunkDone)
    {
        using var decoder = new ExtractionDecoder(aligned, tok, Math.Min(batch, queue.Count), o.TopK, baseVocab, o.MaxNewTokens, o.StopStrings);
        var pending = new Dictionary<int, List<DecodedPrompt>>();
        try
        {
            foreach (var d in decoder.Run(queue, ct))
            {
                int c = d.Index / o.ChunkSize;
                if (!pending.TryGetValue(c, out var list)) pending[c] = list = [];
                list.Add(d);
                int size = queue.Count(q => q.Index / o.ChunkSize == c);
                if (list.Count < size) { promptDone(list.Count, size); continue; }
                pending.Remove(c);
                chunkDone(c, list.OrderBy(x => x.Index).ToArray());
            }
        }
        finally
        {
            foreach (var d in pending.Values.SelectMany(x => x)) d.Dispose();
        }
    }

    /// <summary>
    /// Token ids of every prompt, raw (for the base) and in the chat template (for the aligned model), checked
    /// before any model is loaded: a prompt whose raw form has no token (an empty prompt, with a tokenizer that
    /// adds no BOS) is refused, since the base would have no position to predict the first generated token
    /// from; a prompt that leaves less than --max-new-tokens of a model's context is refused, or truncated
    /// from the left with a warning under --truncate-prompts. Each prompt is encoded alone, so its batch
    /// never changes what a model reads.
    /// </summary>
    static (IReadOnlyList<int>[] Raw, IReadOnlyList<int>[] Chat) EncodePrompts(IReadOnlyList<ExtractionPrompt> prompts, TextTokenizer baseTok,
        ModelConfig baseConfig, TextTokenizer alignedTok, ModelConfig alignedConfig, ChatTemplate chat, ExtractionOptions o, Action<string>? log)
    {
        var raw = new IReadOnlyList<int>[prompts.Count];
        var chatIds = new IReadOnlyList<int>[prompts.Count];
        for (int i = 0; i < prompts.Count; i++)
        {
            var p = prompts[i];
            var spec = o.ResponsePrefix is null ? p.Spec : p.Spec with { ResponsePrefix = o.ResponsePrefix };
            var r = PromptFormat.Encode(baseTok, spec, null);
            if (r.Count == 0)
                throw new ArgumentException(
                    $"prompt \"{p.Id}\": its raw form is empty and the base tokenizer adds no BOS, so the base model " +
                    "would read no token; give every prompt some text.");
            raw[i] = PromptLength.Fit(r, PromptLength.ContextOf(baseConfig) - o.MaxNewTokens, p.Id,
                $"the base model's context ({PromptLength.ContextOf(baseConfig)} positions) with `MaxNewTokens` {o.MaxNewTokens}", o.TruncatePrompts, log);
            chatIds[i] = PromptLength.Fit(PromptFormat.Encode(alignedTok, spec, chat), PromptLength.ContextOf(alignedConfig) - o.MaxNewTokens, p.Id,
                $"the aligned model's context ({PromptLength.ContextOf(alignedConfig)} positions) with `MaxNewTokens` {o.MaxNewTokens}", o.TruncatePrompts, log);
        }
        return (raw, chatIds);
    }

    /// <summary>
    /// A chunk's file contents from its decoded prompts: the base model's teacher-forced forward (in batches, longest
    /// first so padding stays small), the top-k copied from the device once, and the JSONL lines. Disposes the decoded prompts.
    /// </summary>
    static ShardWriter.Chunk Assemble(CausalLM baseModel, (IReadOnlyList<int>[] Raw, IReadOnlyList<int>[] Chat) encoded, ChatTemplate chat,
        IReadOnlyList<ExtractionPrompt> prompts, int chunk, DecodedPrompt[] decoded, string outDir, ExtractionOptions o, int batch)
    {
        using var scope = NewDisposeScope();
        try
        {
            var hiddenType = o.HiddenF32 ? ScalarType.Float32 : ScalarType.Float16;
            var h = new Tensor[decoded.Length];
            var order = Enumerable.Range(0, decoded.Length).OrderByDescending(j => encoded.Raw[decoded[j].Index].Count + decoded[j].TokenIds.Count).ToArray();
            for (int b0 = 0; b0 < order.Length; b0 += batch)
            {
                var idx = order.Skip(b0).Take(batch).ToArray();
                var part = TeacherForcedHidden(baseModel, idx.Select(j => encoded.Raw[decoded[j].Index]).ToArray(), idx.Select(j => decoded[j].TokenIds).ToArray());
                for (int k = 0; k < idx.Length; k++) h[idx[k]] = part[k].to_type(hiddenType);
            }
            var with = Enumerable.Range(0, decoded.Length).Where(j => decoded[j].TokenIds.Count > 0).ToArray();
            int total = with.Sum(j => decoded[j].TokenIds.Count);
            var hiddenAll = total > 0 ? cat(with.Select(j => h[j]).ToList(), 0) : zeros(0, baseModel.HiddenSize, hiddenType);
            var ids = total > 0 ? cat(with.Select(j => decoded[j].TopIds).ToList(), 0).cpu() : zeros([0, o.TopK], ScalarType.Int32);
            var logits = total > 0 ? cat(with.Select(j => decoded[j].TopLogits).ToList(), 0).cpu() : zeros([0, o.TopK], ScalarType.Float32);
            var seq = tensor(with.SelectMany(j => Enumerable.Repeat(decoded[j].Index, decoded[j].TokenIds.Count)).ToArray(), ScalarType.Int32);
            var pos = tensor(with.SelectMany(j => Enumerable.Range(0, decoded[j].TokenIds.Count)).ToArray(), ScalarType.Int32);
            var lines = with.Select(j =>
            {
                var d = decoded[j];
                var spec = o.ResponsePrefix is null ? prompts[d.Index].Spec : prompts[d.Index].Spec with { ResponsePrefix = o.ResponsePrefix };
                return new JsonObject
                {
                    ["index"] = d.Index, ["id"] = prompts[d.Index].Id, ["raw_prompt"] = PromptFormat.Raw(spec),
                    ["chat_prompt"] = PromptFormat.Chat(chat, spec), ["generation"] = d.Text,
                    ["tokens"] = d.TokenIds.Count, ["finish"] = d.Finish.ToString().ToLowerInvariant(),
                }.ToJsonString(JsonLines.Options);
            }).ToArray();
            int start = chunk * o.ChunkSize;
            var tensors = new[]
            {
                KeyValuePair.Create("hidden", hiddenAll.DetachFromDisposeScope()), KeyValuePair.Create("topk_ids", ids.DetachFromDisposeScope()),
                KeyValuePair.Create("topk_logits", logits.DetachFromDisposeScope()), KeyValuePair.Create("sequence", seq.DetachFromDisposeScope()),
                KeyValuePair.Create("position", pos.DetachFromDisposeScope()),
            };
            return new ShardWriter.Chunk(ChunkPath(outDir, chunk, ".jsonl"), string.Concat(lines.Select(l => l + "\n")), ChunkPath(outDir, chunk, ".safetensors"), tensors,
                new Dictionary<string, string>
                {
                    ["chunk"] = chunk.ToString(), ["first_prompt"] = start.ToString(), ["prompts"] = decoded.Length.ToString(),
                    // the batch this run used (the manifest keeps what was asked: a number, or "auto" for the memory budget's,
                    // which may differ between workers and resumes)
                    ["batch"] = batch.ToString(),
                }, total);
        }
        finally
        {
            foreach (var d in decoded) d.Dispose();
        }
    }


    /// <summary>
    /// The base model's final hidden state at every position that predicts a generated token, from one
    /// teacher-forced forward over raw prompt + generated tokens (left-padded batch). Row j: [T_j, H].
    /// </summary>
    public static Tensor[] TeacherForcedHidden(CausalLM model, IReadOnlyList<IReadOnlyList<int>> raw, IReadOnlyList<IReadOnlyList<int>> generated)
    {
        for (int j = 0; j < raw.Count; j++)
            if (raw[j].Count == 0)
                throw new ArgumentException($"row {j}: the base model must read at least one prompt token (e.g. BOS) before the generated ones.");
        using var noGrad = no_grad();
        int b = raw.Count;
        using var scope = NewDisposeScope();
        var padded = PaddedBatch.Left(Enumerable.Range(0, b)
            .Select(j => (IReadOnlyList<int>)raw[j].Concat(generated[j].Take(Math.Max(0, generated[j].Count - 1))).ToArray()).ToArray(), 0, model.Device);
        var hidden = model.Forward(padded.Ids, padded.Positions, null, padded.Mask);
        var result = new Tensor[b];
        for (int j = 0; j < b; j++)
        {
            int gen = generated[j].Count;
            result[j] = gen == 0
                ? zeros(0, hidden.shape[2], hidden.dtype)
                : hidden[j].narrow(0, padded.Offsets[j] + raw[j].Count - 1, gen).cpu().MoveToOuterDisposeScope();
        }
        return result;
    }

    public static string ChunkPath(string outDir, int chunk, string ext) => Path.Combine(outDir, "chunks", $"chunk-{chunk:D6}{ext}");

    /// <summary>Refuses before any compute unless the aligned vocabulary extends the base one id for id.</summary>
    internal static void CheckSharedVocabulary(string baseDir, ModelConfig bc, TextTokenizer bt, string alignedDir, ModelConfig ac, TextTokenizer at)
    {
        if (ac.VocabSize < bc.VocabSize)
            throw new ArgumentException($"the aligned model ({alignedDir}) has a smaller vocabulary ({ac.VocabSize}) than the base model ({baseDir}, {bc.VocabSize}); they must share it.");
        if (ac.HiddenSize <= 0 || bc.HiddenSize <= 0) throw new ArgumentException("invalid hidden size.");
        int n = Math.Min(bt.VocabSize, Math.Min(at.VocabSize, bc.VocabSize));
        if (SharedVocabulary.FirstDifference(bt, at, n) is int id)
            throw new ArgumentException(
                $"the base ({baseDir}) and aligned ({alignedDir}) tokenizers differ at id {id} (\"{bt.IdToToken(id)}\" vs \"{at.IdToToken(id)}\"): " +
                "extraction needs both models to share the vocabulary.");
    }

    static JsonObject BuildManifest(string baseDir, ModelConfig bc, string alignedDir, ModelConfig ac, ChatTemplate chat,
        IReadOnlyList<ExtractionPrompt> prompts, string source, ExtractionOptions o) => new()
    {
        ["format"] = Format, ["version"] = 1,
        ["base"] = new JsonObject
        {
            ["path"] = Path.GetFullPath(baseDir), ["identity"] = ModelIdentity.Of(baseDir),
            ["vocab_size"] = bc.VocabSize, ["hidden_size"] = bc.HiddenSize, ["model_type"] = bc.ModelType,
        },
        ["aligned"] = new JsonObject
        {
            ["path"] = Path.GetFullPath(alignedDir), ["identity"] = ModelIdentity.Of(alignedDir),
            ["vocab_size"] = ac.VocabSize, ["chat_template"] = chat.Family,
        },
        ["prompts"] = new JsonObject { ["source"] = source, ["count"] = prompts.Count, ["sha256"] = PromptsHash(prompts) },
        ["settings"] = new JsonObject
        {
            ["top_k"] = o.TopK, ["max_new_tokens"] = o.MaxNewTokens, ["batch"] = o.BatchSize is int bs ? (JsonNode)bs : "auto", ["chunk_size"] = o.ChunkSize,
            ["response_prefix"] = o.ResponsePrefix, ["stop_strings"] = new JsonArray(o.StopStrings.Select(s => (JsonNode)s!).ToArray()),
            ["hidden_dtype"] = o.HiddenF32 ? "F32" : "F16", ["decoding"] = "greedy",
        },
        ["compute_dtype"] = o.Dtype?.ToString().ToLowerInvariant(),
        ["chunks"] = (prompts.Count + o.ChunkSize - 1) / o.ChunkSize,
    };

    static string PromptsHash(IReadOnlyList<ExtractionPrompt> prompts)
    {
        using var sha = SHA256.Create();
        foreach (var p in prompts)
        {
            var b = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new[] { p.Id, p.Spec.Raw, p.Spec.User, p.Spec.ResponsePrefix ?? "" }) + "\n");
            sha.TransformBlock(b, 0, b.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!).ToLowerInvariant();
    }

    /// <summary>
    /// The first worker creates the manifest (atomically and exclusively: of workers starting together exactly
    /// one writes it); later runs (resumes, other workers) must agree with it, paths aside.
    /// </summary>
    internal static void WriteOrCheckManifest(string outDir, JsonObject manifest)
    {
        var path = Path.Combine(outDir, ManifestName);
        if (AtomicFile.TryCreateExclusive(path, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))) return;
        JsonObject existing;
        try
        {
            existing = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message}); is {outDir} an extraction folder?"); }
        var a = Comparable(existing);
        var b = Comparable(manifest);
        if (a.ToJsonString() != b.ToJsonString())
            throw new InvalidOperationException(
                $"{outDir} holds an extraction made with other settings: {JsonDiff.Describe(a, b)}. " +
                "Use a new --out folder, or add --overwrite to discard it.");
    }

    static JsonObject Comparable(JsonObject m)
    {
        var c = (JsonObject)m.DeepClone();
        (c["base"] as JsonObject)?.Remove("path");
        (c["aligned"] as JsonObject)?.Remove("path");
        (c["prompts"] as JsonObject)?.Remove("source");
        if (c["compute_dtype"] is null) c.Remove("compute_dtype"); // manifests from before --dtype
        return c;
    }
}
