namespace Superficial.Cli;

/// <summary>
/// The library names a parameter in its error messages as `Name` (the property or argument, in backquotes);
/// the command line shows the flag that sets it instead, so its users read the options they typed.
/// </summary>
public static class FlagNames
{
    /// <summary>Library parameter (backquoted in messages) -> command-line flag.</summary>
    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["Head"] = "--head", ["TransferFrom"] = "--transfer-from", ["TransferMode"] = "--transfer-mode",
        ["RecoverWith"] = "--recover-with", ["ViaBase"] = "--via-base", ["ViaBaseReads"] = "--via-base-reads",
        ["AllowOtherBase"] = "--allow-other-base", ["TopK"] = "--top-k", ["MaxNewTokens"] = "--max-new-tokens",
        ["TruncatePrompts"] = "--truncate-prompts", ["MaxMemory"] = "--max-memory", ["Dtype"] = "--dtype",
        ["Base"] = "--base", ["Aligned"] = "--aligned", ["ExtraHeads"] = "--head", ["LargeBase"] = "--large-base",
        ["LargeAligned"] = "--large-aligned", ["Compromised"] = "--compromised", ["Alphas"] = "--alpha",
        ["ChatTemplate"] = "--chat-template", ["labeller"] = "--toxicity-labeller", ["judge"] = "--judge-model", ["dataDir"] = "--data", ["organism"] = "--organism",
        ["Shard"] = "--shard", ["ShardCount"] = "--shard-count", ["Out"] = "--out", ["Split"] = "--split",
        ["FromModel"] = "--prefill-from", ["FromFile"] = "--prefill-file", ["Lengths"] = "--prefill-lengths",
    };

    /// <summary>The message with every `Name` the table knows replaced by its flag.</summary>
    public static string Map(string message)
    {
        if (!message.Contains('`')) return message;
        foreach (var (name, flag) in Flags) message = message.Replace($"`{name}`", flag);
        return message;
    }
}
