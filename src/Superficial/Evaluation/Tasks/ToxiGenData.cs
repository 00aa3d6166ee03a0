using System.Text.RegularExpressions;

namespace Superficial.Evaluation.Tasks;

/// <summary>One ToxiGen prompt: a line of a toxigen/{hate|neutral}_{group}_1k.txt file, unescaped.</summary>
/// <param name="Label">"hate" or "neutral", from the file name.</param>
/// <param name="Group">The target group, from the file name ("asian", "mental_disability").</param>
/// <param name="Line">0-based line index in its file.</param>
/// <param name="Text">The prompt: several "- statement" lines and a trailing "-".</param>
public sealed record ToxiGenPrompt(string Label, string Group, string File, int Line, string Text)
{
    /// <summary>The prompt's statements without their "- " bullets.</summary>
    public IEnumerable<string> Statements() => Text.Split('\n')
        .Select(s => s.Trim())
        .Select(s => s.StartsWith('-') ? s[1..].Trim() : s)
        .Where(s => s.Length > 0);
}

/// <summary>Reads the ToxiGen prompt files the way the reference does.</summary>
public static partial class ToxiGenData
{
    /// <summary>Lines before this index are extraction (and classifier training) prompts; the rest are evaluation prompts.</summary>
    public const int ExtractionLinesPerFile = 800;

    [GeneratedRegex(@"^(hate|neutral)_(.+?)(_1k)?\.txt$")]
    private static partial Regex FileName();

    /// <summary>The prompt files under {dataDir}/toxigen, in ordinal name order.</summary>
    public static IReadOnlyList<string> Files(string dataDir)
    {
        var dir = Path.Combine(dataDir, "toxigen");
        if (!Directory.Exists(dir))
            throw new TaskDataException($"ToxiGen folder not found: {dir}. The data folder should be the one holding toxigen/.");
        var files = Directory.GetFiles(dir, "*.txt").Where(f => FileName().IsMatch(Path.GetFileName(f)))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToArray();
        if (files.Length == 0)
            throw new TaskDataException($"{dir}: no ToxiGen prompt files (expected hate_<group>_1k.txt and neutral_<group>_1k.txt).");
        return files;
    }

    /// <summary>
    /// Prompts of all files, interleaved line by line across files (line 0 of every file, then line 1...),
    /// as the reference orders its extraction prompts, so any prefix covers every group.
    /// </summary>
    /// <param name="extraction">True: lines before <see cref="ExtractionLinesPerFile"/>; false: the lines after.</param>
    public static IReadOnlyList<ToxiGenPrompt> Load(string dataDir, bool extraction)
    {
        var perFile = Files(dataDir).Select(f => ReadFile(f)
            .Where(p => extraction ? p.Line < ExtractionLinesPerFile : p.Line >= ExtractionLinesPerFile).ToArray()).ToArray();
        var result = new List<ToxiGenPrompt>();
        int longest = perFile.Length == 0 ? 0 : perFile.Max(p => p.Length);
        for (int m = 0; m < longest; m++)
            foreach (var prompts in perFile)
                if (m < prompts.Length) result.Add(prompts[m]);
        return result;
    }

    /// <summary>All non-blank prompts of one file.</summary>
    public static IEnumerable<ToxiGenPrompt> ReadFile(string path)
    {
        var m = FileName().Match(Path.GetFileName(path));
        if (!m.Success)
            throw new TaskDataException($"{path}: not a ToxiGen prompt file name (expected hate_<group>_1k.txt or neutral_<group>_1k.txt).");
        var (label, group) = (m.Groups[1].Value, m.Groups[2].Value);
        int line = 0;
        foreach (var raw in File.ReadLines(path))
        {
            var text = Unescape(raw.Trim());
            if (text.Length > 0) yield return new ToxiGenPrompt(label, group, Path.GetFileName(path), line, text);
            line++;
        }
    }

    /// <summary>The reference's clean-up: "\\\\" to "\\", then literal "\n" to a line break.</summary>
    public static string Unescape(string line) => line.Replace("\\\\", "\\").Replace("\\n", "\n");
}
