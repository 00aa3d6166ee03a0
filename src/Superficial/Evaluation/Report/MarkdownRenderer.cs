using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Superficial.Evaluation.Report;

/// <summary>Renders report blocks as Markdown; charts are linked as PNG files in a folder beside the report.</summary>
public static class MarkdownRenderer
{
    public static string Render(string title, IReadOnlyList<ReportBlock> blocks, string chartFolder)
    {
        var sb = new StringBuilder();
        foreach (var block in blocks)
        {
            switch (block)
            {
                case Heading h:
                    sb.Append(new string('#', h.Level)).Append(' ').Append(Inline(h.Text)).Append("\n\n");
                    break;
                case Paragraph p:
                    sb.Append(p.Muted ? "_" + Inline(p.Text) + "_" : Inline(p.Text)).Append("\n\n");
                    break;
                case BulletList l:
                    foreach (var item in l.Items) sb.Append("- ").Append(Inline(item)).Append('\n');
                    sb.Append('\n');
                    break;
                case Table t:
                    sb.Append("| ").Append(string.Join(" | ", t.Header.Select(Cell))).Append(" |\n");
                    sb.Append('|').Append(string.Concat(t.Header.Select(_ => " --- |"))).Append('\n');
                    foreach (var row in t.Rows) sb.Append("| ").Append(string.Join(" | ", row.Select(Cell))).Append(" |\n");
                    if (t.Caption is not null) sb.Append("\n_").Append(Inline(t.Caption)).Append("_\n");
                    sb.Append('\n');
                    break;
                case Figure f:
                    sb.Append("![").Append(Inline(f.Alt)).Append("](").Append(chartFolder).Append('/').Append(f.FileName).Append(")\n\n")
                      .Append('_').Append(Inline(f.Caption)).Append("_\n\n");
                    break;
                case ExampleBlock x:
                    sb.Append("<details").Append(x.Open ? " open" : "").Append("><summary>").Append(WebUtility.HtmlEncode(x.Title)).Append("</summary>\n\n");
                    foreach (var p in x.Prompts) sb.Append("**").Append(Inline(p.Label)).Append("**\n\n").Append(Fenced(p.Text));
                    foreach (var o in x.Outputs)
                        sb.Append("**").Append(Inline(o.Variant)).Append("** (score ").Append(ReportFormat.Number(o.Score)).Append(")\n\n").Append(Fenced(o.Output));
                    sb.Append("</details>\n\n");
                    break;
                default:
                    throw new ArgumentException($"Unknown report block {block.GetType().Name}.");
            }
        }
        return sb.ToString();
    }

    // Text outside code: markup characters escaped (Markdown passes inline HTML through), and the
    // punctuation that would start emphasis, code or a table cell neutralised.
    static string Inline(string text) =>
        Regex.Replace(text.Replace("\r", "").Replace("\n", " "), @"([\\`*_|])", @"\$1")
            .Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    static string Cell(string text) => Inline(text);

    // A fence longer than any backtick run inside, so model output can never close it early.
    static string Fenced(string text)
    {
        var longest = Regex.Matches(text, "`+").Select(m => m.Length).DefaultIfEmpty(0).Max();
        var fence = new string('`', Math.Max(3, longest + 1));
        return $"{fence}text\n{text.TrimEnd('\n')}\n{fence}\n\n";
    }
}
