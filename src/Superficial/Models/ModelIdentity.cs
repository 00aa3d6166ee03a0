using System.Security.Cryptography;
using System.Text;

namespace Superficial.Models;

/// <summary>
/// A short fingerprint of a model folder, recorded in manifests so later stages can check they are
/// given the same model: sha256 over config.json, the tokenizer files, and for each weight file its
/// size and three 1 MiB samples (start, middle, end). Cheap on a 14 GB checkpoint, yet it changes
/// when the weights do.
/// </summary>
public static class ModelIdentity
{
    static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];

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
        foreach (var file in Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal))
        {
            using var fs = File.OpenRead(file);
            Add(Path.GetFileName(file) + ":size", BitConverter.GetBytes(fs.Length));
            const int block = 1 << 20;
            foreach (var at in new[] { 0L, Math.Max(0, fs.Length / 2 - block / 2), Math.Max(0, fs.Length - block) }.Distinct())
            {
                fs.Position = at;
                var buf = new byte[(int)Math.Min(block, fs.Length - at)];
                fs.ReadExactly(buf);
                Add($"{Path.GetFileName(file)}@{at}", buf);
            }
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!)[..16].ToLowerInvariant();
    }
}
