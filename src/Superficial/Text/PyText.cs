namespace Superficial.Text;

/// <summary>Python/Jinja string semantics that chat templates rely on (str.strip uses Python's notion of whitespace).</summary>
internal static class PyText
{
    /// <summary>Python's str.isspace for one UTF-16 unit (all Python whitespace lies in the BMP).</summary>
    public static bool IsSpace(char c) => c switch
    {
        >= '\t' and <= '\r' => true,
        >= '\x1c' and <= ' ' => true,
        '\x85' or '\xa0' or '\u1680' or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    /// <summary>Python str.strip() / Jinja's trim filter.</summary>
    public static string Strip(string s) => RStrip(LStrip(s));

    public static string LStrip(string s)
    {
        int i = 0;
        while (i < s.Length && IsSpace(s[i])) i++;
        return s[i..];
    }

    public static string RStrip(string s)
    {
        int j = s.Length;
        while (j > 0 && IsSpace(s[j - 1])) j--;
        return s[..j];
    }

    /// <summary>Python str.lstrip(chars) / rstrip(chars) with an explicit character set.</summary>
    public static string LStrip(string s, string chars)
    {
        int i = 0;
        while (i < s.Length && chars.Contains(s[i])) i++;
        return s[i..];
    }
}
