using System.Text;

namespace Superficial.Text;

/// <summary>
/// GPT-2's byte-to-unicode table: every byte value gets a printable character, so byte-level BPE
/// vocabularies can be stored as strings (space is "Ġ", newline "Ċ").
/// </summary>
public static class ByteLevel
{
    public static readonly char[] ByteToChar = Build();
    internal static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(x => x.c, x => (byte)x.b);

    static char[] Build()
    {
        var map = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = direct[b] ? (char)b : (char)(256 + n++);
        return map;
    }

    /// <summary>The byte-level string of a text (its UTF-8 bytes, each as its stand-in character).</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Appends the bytes a byte-level token stands for; characters outside the table are kept as UTF-8.</summary>
    public static void AppendBytes(string token, List<byte> into)
    {
        foreach (var c in token)
        {
            if (CharToByte.TryGetValue(c, out var b)) into.Add(b);
            else into.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
    }
}
