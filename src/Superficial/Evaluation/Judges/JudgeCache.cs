using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Superficial.Evaluation.Judges;

/// <summary>
/// Append-only JSONL file of judge replies keyed by a hash of (judge model, full judge prompt), so an
/// interrupted evaluation resumes without asking again. A line torn by a crash is dropped on load.
/// Holds no credentials: a line is the key hash, the model, the item id and the reply.
/// </summary>
internal sealed class JudgeCache : IDisposable
{
    sealed record Entry(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("model")] string Model,
        [property: JsonPropertyName("item")] string Item,
        [property: JsonPropertyName("reply")] string Reply);

    readonly Dictionary<string, string> _replies = new(StringComparer.Ordinal);
    readonly SemaphoreSlim _writeGate = new(1, 1);
    readonly string _path;
    StreamWriter? _writer;

    public JudgeCache(string path, Action<string>? log = null)
    {
        _path = path;
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        if (File.Exists(path)) Load(log);
    }

    public int Count => _replies.Count;

    /// <summary>The cache key: the judged output is part of the prompt, so this covers (model, prompt, output).</summary>
    public static string Key(string model, string prompt) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(model + "\0" + prompt)));

    public bool TryGet(string key, out string reply)
    {
        lock (_replies) return _replies.TryGetValue(key, out reply!);
    }

    public async Task AddAsync(string key, string model, string item, string reply, CancellationToken ct)
    {
        var line = JsonSerializer.Serialize(new Entry(key, model, item, reply), PredictionRecord.JsonOptions);
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _writer ??= new StreamWriter(new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
            await _writer.WriteAsync(line + "\n").ConfigureAwait(false);
            await _writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            lock (_replies) _replies[key] = reply;
        }
        finally { _writeGate.Release(); }
    }

    void Load(Action<string>? log)
    {
        var bytes = File.ReadAllBytes(_path);
        var text = new UTF8Encoding(false).GetString(bytes);
        var lines = text.Split('\n');
        // After Split, the last element is "" when the file ends with a newline; otherwise it is an unterminated line.
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length == 0) continue;
            bool last = i == lines.Length - 1;
            Entry? e = null;
            try { e = JsonSerializer.Deserialize<Entry>(line); } catch (JsonException) when (last) { }
            catch (JsonException ex)
            {
                throw new JudgeException($"{_path}:{i + 1}: not a judge cache entry ({ex.Message}). Remove that line to re-ask its item.");
            }
            if (e is null || e.Key is null || e.Reply is null)
            {
                if (!last) throw new JudgeException($"{_path}:{i + 1}: not a judge cache entry. Remove that line to re-ask its item.");
                e = null;
            }
            if (last)
            {
                // An unterminated last line was being written when the process stopped: keep it if whole, else cut it off.
                int keep = bytes.Length - Encoding.UTF8.GetByteCount(line);
                using var fs = new FileStream(_path, FileMode.Open, FileAccess.Write, FileShare.Read);
                if (e is null)
                {
                    fs.SetLength(keep);
                    log?.Invoke($"judge cache {_path}: dropped an incomplete last line (an interrupted write).");
                }
                else
                {
                    fs.Seek(0, SeekOrigin.End);
                    fs.WriteByte((byte)'\n');
                }
            }
            if (e is not null) _replies[e.Key] = e.Reply;
        }
    }

    public void Dispose()
    {
        _writer?.Dispose();
        _writeGate.Dispose();
    }
}
