using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using Superficial.IO;

namespace Superficial.Models;

/// <summary>
/// A short fingerprint of a model folder, recorded in manifests and head files so later stages can check
/// they are given the same model: sha256 over config.json, the tokenizer files, and for each weight file
/// its name, size and an XxHash128 of every byte (header and all tensors). Two checkpoints that differ in
/// a single weight get different identities. Hashing reads each file once (several GB/s); the result is
/// cached per file by (full path, size, modification time), so later runs pay nothing.
/// </summary>
public static class ModelIdentity
{
    static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];

    /// <summary>Bump when the way a weight file is hashed changes, so cached hashes of the old way are not reused.</summary>
    const string HashVersion = "xxh128-v1";

    public static string Of(string folder)
    {
        using var sha = SHA256.Create();
        void Add(string label, ReadOnlySpan<byte> bytes)
        {
            var l = Encoding.UTF8.GetBytes(label + "\0");
            sha.TransformBlock(l, 0, l.Length, null, 0);
            var arr = bytes.ToArray();
            sha.TransformBlock(arr, 0, arr.Length, null, 0);
        }
        var config = Path.Combine(folder, "config.json");
        if (!File.Exists(config)) throw new FileNotFoundException($"{folder}: no config.json, so this is not a model folder.");
        Add("config.json", File.ReadAllBytes(config));
        foreach (var name in TokenizerFiles)
        {
            var p = Path.Combine(folder, name);
            if (File.Exists(p)) Add(name, File.ReadAllBytes(p));
        }
        foreach (var file in WeightFiles(folder))
        {
            var info = new FileInfo(ResolveLinks(Path.GetFullPath(file))); // a symbolic link's own size is not the weights'
            Add(Path.GetFileName(file) + ":size", BitConverter.GetBytes(info.Length));
            Add(Path.GetFileName(file) + ":" + HashVersion, Encoding.ASCII.GetBytes(FileHash(file)));
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!)[..16].ToLowerInvariant();
    }

    /// <summary>
    /// The files the checkpoint loads from, as <see cref="Tensors.Checkpoint"/> chooses them: the shards of
    /// model.safetensors.index.json, else model.safetensors, else every *.safetensors (so a head file kept in the
    /// model folder does not change the model's identity).
    /// </summary>
    static IEnumerable<string> WeightFiles(string folder)
    {
        var index = Path.Combine(folder, Tensors.Checkpoint.IndexName);
        if (File.Exists(index))
        {
            try
            {
                var map = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as System.Text.Json.Nodes.JsonObject;
                if (map is not null)
                    return map.Select(kv => (string?)kv.Value).OfType<string>().Distinct().Order(StringComparer.Ordinal)
                        .Select(f => Path.Combine(folder, f)).Where(File.Exists).ToArray();
            }
            catch (System.Text.Json.JsonException) { } // the loader reports a bad index; the identity then covers every file
        }
        var single = Path.Combine(folder, "model.safetensors");
        return File.Exists(single) ? [single] : Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal);
    }

    /// <summary>XxHash128 of a whole file, hex; cached by (resolved path, size, modification time).</summary>
    public static string FileHash(string file)
    {
        var resolved = ResolveLinks(Path.GetFullPath(file));
        var info = new FileInfo(resolved);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{HashVersion}\0{resolved}\0{info.Length}\0{info.LastWriteTimeUtc.Ticks}")));
        var cached = Path.Combine(CacheFolder, key);
        try
        {
            if (File.Exists(cached) && File.ReadAllText(cached).Trim() is { Length: 32 } hit) return hit;
        }
        catch (IOException) { }
        var hash = HashFile(resolved);
        try { AtomicFile.WriteAllText(cached, hash); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a read-only cache only costs time
        return hash;
    }

    /// <summary>XxHash128 of every byte of a file, read sequentially in large blocks.</summary>
    public static string HashFile(string file)
    {
        var hasher = new XxHash128();
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var buffer = new byte[4 << 20];
        int n;
        while ((n = fs.Read(buffer, 0, buffer.Length)) > 0) hasher.Append(buffer.AsSpan(0, n));
        return Convert.ToHexStringLower(hasher.GetCurrentHash());
    }

    /// <summary>Where per-file hashes are cached: $SUPERFICIAL_HASH_CACHE, else ~/.cache/superficial/file-hashes.</summary>
    static string CacheFolder =>
        Environment.GetEnvironmentVariable("SUPERFICIAL_HASH_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "superficial", "file-hashes");

    /// <summary>The real file behind symbolic links (HF cache folders link every weight file into a blob store).</summary>
    static string ResolveLinks(string path)
    {
        try { return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path; }
        catch (IOException) { return path; }
    }
}
