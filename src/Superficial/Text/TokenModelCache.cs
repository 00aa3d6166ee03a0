using System.Security.Cryptography;

namespace Superficial.Text;

/// <summary>
/// Token models already built in this process, by the SHA-256 of the file's bytes they were built from (the bytes the
/// caller parsed, so no second read and no other version of the file) and how. A base model
/// and its chat model usually share one tokenizer file, and extraction, eval and transfer load it for each model;
/// building the model (a 32 000-piece SentencePiece vocabulary's merges, Microsoft.ML.Tokenizers' tables) took
/// 0.1-0.3 s warm and 0.4-0.6 s in a fresh process, hashing the file takes milliseconds. Keyed by content, not path:
/// a file changed since (or another file with the same bytes) gets what its bytes give. Weakly held, so a model no
/// tokenizer uses can be collected. A model is immutable once built (encoding from several threads was already allowed).
/// </summary>
internal static class TokenModelCache
{
    static readonly Dictionary<string, WeakReference<object>> built = new(StringComparer.Ordinal);

    public static T GetOrBuild<T>(byte[] file, string kind, Func<T> build) where T : class
    {
        string key = kind + ":" + Convert.ToHexString(SHA256.HashData(file));
        lock (built)
            if (built.TryGetValue(key, out var weak) && weak.TryGetTarget(out var o) && o is T known) return known;
        var fresh = build();   // outside the lock: two first loads at once each build theirs (same result), one is kept
        lock (built)
        {
            foreach (var dead in built.Where(kv => !kv.Value.TryGetTarget(out _)).Select(kv => kv.Key).ToList()) built.Remove(dead);
            built[key] = new WeakReference<object>(fresh);
        }
        return fresh;
    }
}
