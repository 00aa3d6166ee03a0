using Superficial.IO;

namespace Superficial.Cli;

/// <summary>Parses a flag's word into the library's enum, with the error the command line has always given.</summary>
public static class Choices
{
    /// <summary>E.g. Parse&lt;TransferMode&gt;("--transfer-mode", "sideways") throws "--transfer-mode sideways: expected offset or direct."</summary>
    public static T Parse<T>(string flag, string word) where T : struct, Enum =>
        EnumNames.Parse<T>(word) ?? throw new ArgumentException($"{flag} {word}: expected {EnumNames.Choices<T>()}.");
}
