namespace Superficial.IO;

/// <summary>
/// The lower-case words by which an enum's values are written in files and typed on the command line
/// (TransferMode.Offset is "offset"), so both spell a choice the same way.
/// </summary>
public static class EnumNames
{
    public static string Name<T>(this T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

    /// <summary>The value whose <see cref="Name{T}"/> is <paramref name="word"/> (exactly), or null.</summary>
    public static T? Parse<T>(string word) where T : struct, Enum =>
        Enum.GetValues<T>().Select(v => (T?)v).FirstOrDefault(v => v!.Value.Name() == word);

    /// <summary>The choices in words: "a or b", "a, b or c".</summary>
    public static string Choices<T>() where T : struct, Enum
    {
        var names = Enum.GetValues<T>().Select(v => v.Name()).ToArray();
        return names.Length == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
    }
}
