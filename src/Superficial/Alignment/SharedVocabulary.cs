using Superficial.Text;

namespace Superficial.Alignment;

/// <summary>Checks that two tokenizers give the same token the same id (what every head transfer and extraction relies on).</summary>
public static class SharedVocabulary
{
    /// <summary>The first id below <paramref name="count"/> whose token differs, or null when they agree.</summary>
    public static int? FirstDifference(TextTokenizer a, TextTokenizer b, int count)
    {
        for (int id = 0; id < count; id++)
            if (a.IdToToken(id) != b.IdToToken(id)) return id;
        return null;
    }
}
