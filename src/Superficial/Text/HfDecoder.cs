using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Superficial.Text;

/// <summary>A tokenizer.json "decoder": turns the token strings of a sequence back into text, with HF's semantics.</summary>
internal abstract class HfDecoder
{
    /// <summary>HF's decode_chain: token strings in, (possibly fewer) strings out; the caller concatenates them.</summary>
    public abstract List<string> DecodeChain(List<string> tokens);

    public static HfDecoder? Parse(JsonElement? json, string where)
    {
        if (json is not { } e) return null;
        var type = JsonRead.Str(e, "type", where) ?? throw new TokenizerFormatException($"{where}: decoder has no 'type'.");
        return type switch
        {
            "Sequence" => new Chain(JsonRead.Req(e, "decoders", where, JsonValueKind.Array).EnumerateArray()
                .Select((d, i) => Parse(d, $"{where}.decoders[{i}]")!).ToArray()),
            "ByteLevel" => new ByteLevelBytes(),
            "Replace" => new Replace(HfPattern.Parse(JsonRead.Req(e, "pattern", where, JsonValueKind.Object), where), JsonRead.Str(e, "content", where) ?? ""),
            "ByteFallback" => new ByteFallback(),
            "Fuse" => new Fuse(),
            "Strip" => new Strip(JsonRead.Str(e, "content", where) ?? " ", JsonRead.Int(e, "start", where) ?? 0, JsonRead.Int(e, "stop", where) ?? 0),
            "Metaspace" => new Metaspace(JsonRead.Str(e, "replacement", where) ?? "▁",
                (JsonRead.Str(e, "prepend_scheme", where) ?? ((JsonRead.Bool(e, "add_prefix_space", where) ?? true) ? "always" : "never")) != "never"),
            _ => throw new TokenizerFormatException($"{where}: decoder type '{type}' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)."),
        };
    }

    /// <summary>The decoder HF builds for a SentencePiece BPE model (LlamaConverter, legacy mode).</summary>
    public static HfDecoder SentencePiece(bool stripDummyPrefix)
    {
        var parts = new List<HfDecoder> { new Replace(null, "▁", " "), new ByteFallback(), new Fuse() };
        if (stripDummyPrefix) parts.Add(new Strip(" ", 1, 0));
        return new Chain(parts.ToArray());
    }

    sealed class Chain(HfDecoder[] parts) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) { foreach (var p in parts) tokens = p.DecodeChain(tokens); return tokens; }
    }

    sealed class ByteLevelBytes : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                // A token made only of byte-level characters becomes those bytes; any other token (e.g. an added
                // token holding a space) contributes its own UTF-8 bytes, as HF does.
                bool all = true;
                foreach (var c in t) if (!ByteLevel.CharToByte.ContainsKey(c)) { all = false; break; }
                if (all) foreach (var c in t) bytes.Add(ByteLevel.CharToByte[c]);
                else bytes.AddRange(Encoding.UTF8.GetBytes(t));
            }
            return [Encoding.UTF8.GetString(bytes.ToArray())];
        }
    }

    sealed class Replace : HfDecoder
    {
        readonly HfPattern? _pattern;
        readonly string _literal = "";
        readonly string _content;
        public Replace(HfPattern pattern, string content) { _pattern = pattern; _content = content; }
        public Replace(HfPattern? pattern, string literal, string content) { _pattern = pattern; _literal = literal; _content = content; }
        public override List<string> DecodeChain(List<string> tokens) =>
            tokens.Select(t => _pattern != null ? _pattern.ReplaceAll(t, _content) : t.Replace(_literal, _content, StringComparison.Ordinal)).ToList();
    }

    sealed class ByteFallback : HfDecoder
    {
        static readonly Regex ByteToken = new("^<0x([0-9A-Fa-f]{2})>$", RegexOptions.CultureInvariant);

        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>();
            var pending = new List<byte>();
            void Flush()
            {
                if (pending.Count == 0) return;
                var arr = pending.ToArray();
                try { output.Add(new UTF8Encoding(false, true).GetString(arr)); }
                catch (DecoderFallbackException) { foreach (var _ in arr) output.Add("\uFFFD"); }
                pending.Clear();
            }
            foreach (var t in tokens)
            {
                var m = t.Length == 6 ? ByteToken.Match(t) : Match.Empty;
                if (m.Success) pending.Add(Convert.ToByte(m.Groups[1].Value, 16));
                else { Flush(); output.Add(t); }
            }
            Flush();
            return output;
        }
    }

    sealed class Fuse : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    sealed class Strip(string content, int start, int stop) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t =>
        {
            int i = 0, j = t.Length, n = 0;
            while (n < start && i < j && string.CompareOrdinal(t, i, content, 0, content.Length) == 0 && content.Length > 0) { i += content.Length; n++; }
            n = 0;
            while (n < stop && j - content.Length >= i && content.Length > 0 && string.CompareOrdinal(t, j - content.Length, content, 0, content.Length) == 0) { j -= content.Length; n++; }
            return t[i..j];
        }).ToList();
    }

    sealed class Metaspace(string replacement, bool stripFirst) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select((t, i) =>
        {
            var s = t.Replace(replacement, " ", StringComparison.Ordinal);
            return i == 0 && stripFirst && s.StartsWith(' ') ? s[1..] : s;
        }).ToList();
    }
}
