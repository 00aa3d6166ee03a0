using System.Net;
using System.Text;

namespace Superficial.Evaluation.Report;

/// <summary>Renders report blocks as one self-contained HTML page: inline CSS, charts as base64 PNG, no external resources.</summary>
public static class HtmlRenderer
{
    const string Css = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1200px;padding:16px 28px;color:#1d1d1f;line-height:1.45}
        h1{font-size:1.7em;border-bottom:2px solid #0072B2;padding-bottom:6px}
        h2{font-size:1.35em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:4px}
        h3{font-size:1.12em;margin-top:1.6em}
        .table-scroll{max-width:100%;overflow-x:auto;margin:10px 0 14px}
        table{border-collapse:collapse;margin:0;font-size:.92em}
        th,td{border:1px solid #d0d0d0;padding:4px 9px;text-align:left;vertical-align:top}
        th{background:#f0f4f8}
        tr:nth-child(even) td{background:#fafafa}
        td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
        caption{caption-side:bottom;text-align:left;color:#666;font-size:.9em;padding-top:4px}
        figure{display:inline-block;vertical-align:top;margin:14px 14px 14px 0;max-width:100%}
        figure img{max-width:100%;border:1px solid #e3e3e3}
        figcaption{color:#555;font-size:.9em}
        p.muted{color:#666;font-size:.92em}
        details{border:1px solid #d8d8d8;border-radius:6px;margin:8px 0;padding:4px 10px;background:#fcfcfc}
        summary{cursor:pointer;font-weight:600;padding:3px 0}
        .prompt{margin:6px 0}
        .outputs{display:grid;gap:10px;margin:8px 0}
        .outputs>div{min-width:0}
        .prompt h4,.outputs h4{margin:2px 0 4px;font-size:.95em}
        .score{font-weight:400;color:#555}
        pre{white-space:pre-wrap;word-wrap:break-word;background:#f6f8fa;border:1px solid #e1e4e8;border-radius:4px;padding:8px;margin:0;font-size:.85em;max-height:420px;overflow:auto}
        """;

    public static string Render(string title, IReadOnlyList<ReportBlock> blocks)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
          .Append("<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Css).Append("\n</style>\n</head>\n<body>\n");
        foreach (var block in blocks) Append(sb, block);
        sb.Append("</body>\n</html>\n");
        return sb.ToString();
    }

    static void Append(StringBuilder sb, ReportBlock block)
    {
        switch (block)
        {
            case Heading h:
                sb.Append($"<h{h.Level} id=\"{E(h.Anchor)}\">").Append(E(h.Text)).Append($"</h{h.Level}>\n");
                break;
            case Paragraph p:
                sb.Append(p.Muted ? "<p class=\"muted\">" : "<p>").Append(E(p.Text)).Append("</p>\n");
                break;
            case BulletList l:
                sb.Append("<ul>\n");
                foreach (var item in l.Items) sb.Append("<li>").Append(E(item)).Append("</li>\n");
                sb.Append("</ul>\n");
                break;
            case Table t:
                // A wide table scrolls inside its box instead of running off the page.
                sb.Append("<div class=\"table-scroll\"><table>\n");
                if (t.Caption is not null) sb.Append("<caption>").Append(E(t.Caption)).Append("</caption>\n");
                sb.Append("<thead><tr>");
                foreach (var h in t.Header) sb.Append("<th>").Append(E(h)).Append("</th>");
                sb.Append("</tr></thead>\n<tbody>\n");
                foreach (var row in t.Rows)
                {
                    sb.Append("<tr>");
                    foreach (var cell in row)
                        sb.Append(LooksNumeric(cell) ? "<td class=\"num\">" : "<td>").Append(E(cell)).Append("</td>");
                    sb.Append("</tr>\n");
                }
                sb.Append("</tbody>\n</table></div>\n");
                break;
            case Figure f:
                // As wide as its chart, so captions wrap under it and small charts sit side by side.
                sb.Append($"<figure style=\"width:{PngWidth(f.Png) + 2}px\">\n<img alt=\"").Append(E(f.Alt)).Append("\" src=\"data:image/png;base64,")
                  .Append(Convert.ToBase64String(f.Png)).Append("\">\n<figcaption>").Append(E(f.Caption)).Append("</figcaption>\n</figure>\n");
                break;
            case ExampleBlock x:
                sb.Append(x.Open ? "<details open>\n" : "<details>\n").Append("<summary>").Append(E(x.Title)).Append("</summary>\n");
                foreach (var p in x.Prompts)
                    sb.Append("<div class=\"prompt\"><h4>").Append(E(p.Label)).Append("</h4><pre>").Append(E(p.Text)).Append("</pre></div>\n");
                sb.Append($"<div class=\"outputs\" style=\"grid-template-columns:repeat({Math.Max(1, x.Outputs.Count)},1fr)\">\n");
                foreach (var o in x.Outputs)
                    sb.Append("<div><h4>").Append(E(o.Variant)).Append(" <span class=\"score\">(score ")
                      .Append(ReportFormat.Number(o.Score)).Append(")</span></h4><pre>").Append(E(o.Output)).Append("</pre></div>\n");
                sb.Append("</div>\n</details>\n");
                break;
            default:
                throw new ArgumentException($"Unknown report block {block.GetType().Name}.");
        }
    }

    // A PNG's width is the big-endian integer at bytes 16-19 (the IHDR chunk).
    static int PngWidth(byte[] png) =>
        png.Length >= 24 && png[1] == (byte)'P' && png[2] == (byte)'N' && png[3] == (byte)'G'
            ? System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4))
            : throw new ArgumentException("A report figure must be a PNG image.");

    static bool LooksNumeric(string cell) => cell.Length > 0 && (char.IsDigit(cell[0]) || cell[0] is '-' or '−' or '+') && cell.Length < 40;

    static string E(string text) => WebUtility.HtmlEncode(text);
}
