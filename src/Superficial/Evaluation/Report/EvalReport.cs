using Superficial.Evaluation.Runner;

namespace Superficial.Evaluation.Report;

/// <summary>The files a report consists of.</summary>
public sealed record ReportFiles(string Markdown, string Html, IReadOnlyList<string> Charts);

/// <summary>
/// Writes report.md (charts as PNG files in report_files/) and a self-contained report.html (CSS inline,
/// charts as base64 PNG) from a run folder's summary.json and prediction files.
/// </summary>
public static class EvalReport
{
    public const string ChartFolder = "report_files";

    /// <summary>Writes the report; <paramref name="more"/> are sections appended at its end (measured elsewhere, e.g. the organism's recovery curve).</summary>
    public static ReportFiles Write(string runDir, ReportOptions? options = null, IReadOnlyList<ReportBlock>? more = null)
    {
        options ??= new ReportOptions();
        var summary = EvalSummary.Load(Path.Combine(runDir, EvalSummary.FileName));
        var blocks = new ReportBuilder(summary, runDir, options).Build().Concat(more ?? []).ToList();

        var chartDir = Path.Combine(runDir, ChartFolder);
        Directory.CreateDirectory(chartDir);
        var charts = new List<string>();
        foreach (var f in blocks.OfType<Figure>())
        {
            var path = Path.Combine(chartDir, f.FileName);
            WriteAtomically(path, f.Png);
            charts.Add(path);
        }
        var md = Path.Combine(runDir, "report.md");
        var html = Path.Combine(runDir, "report.html");
        WriteAtomically(md, System.Text.Encoding.UTF8.GetBytes(MarkdownRenderer.Render(options.Title, blocks, ChartFolder)));
        WriteAtomically(html, System.Text.Encoding.UTF8.GetBytes(HtmlRenderer.Render(options.Title, blocks)));
        return new ReportFiles(md, html, charts);
    }

    static void WriteAtomically(string path, byte[] bytes) => IO.AtomicFile.WriteAllBytes(path, bytes);
}
