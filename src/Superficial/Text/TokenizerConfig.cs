using System.Text.Json;

namespace Superficial.Text;

/// <summary>
/// What a model folder says about special tokens and chat templates besides the vocabulary: tokenizer_config.json,
/// then special_tokens_map.json, then generation_config.json, then chat_template.jinja (each optional).
/// </summary>
internal sealed class TokenizerConfig
{
    public const string ConfigFile = "tokenizer_config.json", SpecialMapFile = "special_tokens_map.json",
        GenerationFile = "generation_config.json", JinjaFile = "chat_template.jinja";

    public bool? AddBosToken, AddEosToken;
    /// <summary>tokenizer_config.json "legacy" (Llama): false makes a converted tokenizer.model prepend "▁" only at the start.</summary>
    public bool? Legacy;
    /// <summary>tokenizer_config.json "tokenizer_class" and "add_prefix_space" (used by the transformers 5 rebuild of Llama tokenizers).</summary>
    public string? TokenizerClass;
    public bool? AddPrefixSpace;
    public bool CleanUpTokenizationSpaces;
    /// <summary>bos/eos/unk/pad token strings and the file+field each came from.</summary>
    public readonly Dictionary<string, (string Content, string Source)> SpecialTokens = new();
    public readonly List<(string Content, string Source)> AdditionalSpecialTokens = new();
    /// <summary>Ids from generation_config.json: bos_token_id, eos_token_id (all of them), pad_token_id.</summary>
    public int? GenBosId, GenPadId;
    public readonly List<int> GenEosIds = new();
    public readonly List<(AddedToken Token, string Source)> AddedTokensDecoder = new();
    public string? ChatTemplate;
    public string? ChatTemplateOrigin;

    public static readonly string[] SpecialNames = ["bos_token", "eos_token", "unk_token", "pad_token"];

    public static TokenizerConfig Read(string folder)
    {
        var cfg = new TokenizerConfig();
        var configPath = Path.Combine(folder, ConfigFile);
        if (File.Exists(configPath))
        {
            using var doc = JsonRead.Parse(configPath);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{configPath}: expected a JSON object.");
            cfg.AddBosToken = JsonRead.Bool(root, "add_bos_token", configPath);
            cfg.AddEosToken = JsonRead.Bool(root, "add_eos_token", configPath);
            cfg.Legacy = JsonRead.Bool(root, "legacy", configPath);
            cfg.TokenizerClass = JsonRead.Str(root, "tokenizer_class", configPath);
            cfg.AddPrefixSpace = JsonRead.Bool(root, "add_prefix_space", configPath);
            cfg.CleanUpTokenizationSpaces = JsonRead.Bool(root, "clean_up_tokenization_spaces", configPath) ?? false;
            cfg.ReadSpecials(root, configPath);
            if (JsonRead.Get(root, "added_tokens_decoder") is { } atd)
            {
                if (atd.ValueKind != JsonValueKind.Object) throw JsonRead.Bad(configPath, "added_tokens_decoder", "an object", atd);
                foreach (var p in atd.EnumerateObject())
                {
                    var where = $"{configPath}: added_tokens_decoder.\"{p.Name}\"";
                    if (!int.TryParse(p.Name, out var id) || id < 0) throw new TokenizerFormatException($"{where}: the key must be a token id.");
                    if (p.Value.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{where}: expected an object with 'content'.");
                    cfg.AddedTokensDecoder.Add((ParseAddedToken(id, p.Value, where), where));
                }
            }
            if (JsonRead.Get(root, "chat_template") is { } ct)
            {
                cfg.ChatTemplateOrigin = $"{configPath}: chat_template";
                cfg.ChatTemplate = ct.ValueKind switch
                {
                    JsonValueKind.String => ct.GetString(),
                    JsonValueKind.Array => PickDefaultTemplate(ct, configPath),
                    _ => throw JsonRead.Bad(configPath, "chat_template", "a string or a list of {name, template}", ct),
                };
            }
        }

        var mapPath = Path.Combine(folder, SpecialMapFile);
        if (File.Exists(mapPath))
        {
            using var doc = JsonRead.Parse(mapPath);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{mapPath}: expected a JSON object.");
            cfg.ReadSpecials(doc.RootElement, mapPath);
        }

        var genPath = Path.Combine(folder, GenerationFile);
        if (File.Exists(genPath))
        {
            using var doc = JsonRead.Parse(genPath);
            var root = doc.RootElement;
            cfg.GenBosId = JsonRead.Int(root, "bos_token_id", genPath);
            cfg.GenPadId = JsonRead.Int(root, "pad_token_id", genPath);
            if (JsonRead.Get(root, "eos_token_id") is { } eos)
            {
                if (eos.ValueKind == JsonValueKind.Number) cfg.GenEosIds.Add(JsonRead.Int(root, "eos_token_id", genPath)!.Value);
                else if (eos.ValueKind == JsonValueKind.Array)
                    foreach (var e in eos.EnumerateArray())
                        cfg.GenEosIds.Add(e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v) ? v : throw JsonRead.Bad(genPath, "eos_token_id", "an integer or a list of integers", eos));
                else throw JsonRead.Bad(genPath, "eos_token_id", "an integer or a list of integers", eos);
            }
        }

        var jinjaPath = Path.Combine(folder, JinjaFile);
        if (File.Exists(jinjaPath))
        {
            // Like transformers, a separate chat_template.jinja takes precedence over tokenizer_config.json.
            cfg.ChatTemplate = File.ReadAllText(jinjaPath);
            cfg.ChatTemplateOrigin = jinjaPath;
        }
        return cfg;
    }

    static string? PickDefaultTemplate(JsonElement list, string path)
    {
        foreach (var item in list.EnumerateArray())
        {
            var name = JsonRead.Str(item, "name", $"{path}: chat_template[]");
            if (name == "default") return JsonRead.Str(item, "template", $"{path}: chat_template[name=default]");
        }
        return null;
    }

    void ReadSpecials(JsonElement root, string path)
    {
        foreach (var name in SpecialNames)
        {
            if (SpecialTokens.ContainsKey(name)) continue; // an earlier file already set it
            if (JsonRead.Get(root, name) is { } v) SpecialTokens[name] = (TokenContent(v, $"{path}: {name}"), $"{path}: {name}");
        }
        if (AdditionalSpecialTokens.Count == 0 && JsonRead.Get(root, "additional_special_tokens") is { } extra)
        {
            if (extra.ValueKind != JsonValueKind.Array) throw JsonRead.Bad(path, "additional_special_tokens", "a list", extra);
            int i = 0;
            foreach (var t in extra.EnumerateArray())
            {
                var where = $"{path}: additional_special_tokens[{i++}]";
                AdditionalSpecialTokens.Add((TokenContent(t, where), where));
            }
        }
    }

    /// <summary>A special token given as a string or as an AddedToken object ({"__type": "AddedToken", "content": ...}).</summary>
    static string TokenContent(JsonElement v, string where) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Object => JsonRead.Str(v, "content", where) ?? throw new TokenizerFormatException($"{where}: token object has no 'content'."),
        _ => throw new TokenizerFormatException($"{where}: expected a token string or an object with 'content'."),
    };

    public static AddedToken ParseAddedToken(int id, JsonElement e, string where)
    {
        var content = JsonRead.Str(e, "content", where) ?? throw new TokenizerFormatException($"{where}: added token has no 'content'.");
        bool special = JsonRead.Bool(e, "special", where) ?? false;
        return new AddedToken(id, content, special,
            Normalized: JsonRead.Bool(e, "normalized", where) ?? !special,
            LStrip: JsonRead.Bool(e, "lstrip", where) ?? false,
            RStrip: JsonRead.Bool(e, "rstrip", where) ?? false,
            SingleWord: JsonRead.Bool(e, "single_word", where) ?? false);
    }
}
