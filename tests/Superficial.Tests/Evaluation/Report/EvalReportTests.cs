using System.Text.RegularExpressions;
using SkiaSharp;
using Superficial.Evaluation.Report;

namespace Superficial.Tests.Evaluation.Report;

public class EvalReportTests
{
    // Set SUPERFICIAL_KEEP_REPORT to a folder to keep the synthetic run and its report for a look (scripts/check-report).
    static string? KeepDir => Environment.GetEnvironmentVariable("SUPERFICIAL_KEEP_REPORT");

    [Fact]
    public async Task Report_is_self_contained_and_shows_tables_charts_and_escaped_outputs()
    {
        using var tmp = TestPaths.NewTempDir("report");
        var dir = KeepDir ?? tmp.Path;
        Directory.CreateDirectory(dir);
        await SyntheticRun.CreateAsync(dir);
        var files = EvalReport.Write(dir);

        var html = File.ReadAllText(files.Html);
        Assert.DoesNotMatch(new Regex(@"(src|href)\s*=\s*[""']?\s*(https?:)?//", RegexOptions.IgnoreCase), html);
        Assert.DoesNotMatch(new Regex(@"<link|<script", RegexOptions.IgnoreCase), html);
        // Charts: main bars + portion, transfer bars + portion, the sweep's portion curves and one metric curve per task.
        Assert.Equal(4 + 1 + 3, Regex.Matches(html, "<img alt=\"[^\"]*\" src=\"data:image/png;base64,").Count);
        Assert.Equal(8, files.Charts.Count);

        // Model outputs are escaped, never live markup.
        Assert.Contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", html);
        Assert.DoesNotContain("<img src=\"https://evil", html);
        Assert.Contains("<details open>", html);

        // Headline table, per-group table with the labeller note, undefined portion with its reason, further sections.
        Assert.Contains("<th>base+head</th>", html);
        Assert.Contains("<th>group</th>", html);
        Assert.Contains("<td>asian</td>", html);
        Assert.Contains("labeller held-out accuracy 0.91 (n=2560)", html);
        Assert.Contains("undefined: high and low are equal", html);
        Assert.Contains("transfer: large-base → large-base+head → large-aligned", html);
        Assert.Contains("Alpha sweeps", html);
        Assert.Contains("synthetic/chat", html);

        var md = File.ReadAllText(files.Markdown);
        foreach (Match m in Regex.Matches(md, @"!\[[^\]]*\]\(([^)]+)\)"))
            Assert.True(File.Exists(Path.Combine(dir, m.Groups[1].Value)), m.Groups[1].Value);
        Assert.Contains("````text", md); // an output holding ``` gets a longer fence
        // Outside code fences (which Markdown shows literally) no output text appears as markup.
        var prose = Regex.Replace(md, @"(?ms)^(`{3,})text\n.*?^\1\n", "");
        Assert.Contains("<script>", md);
        Assert.DoesNotContain("<script>", prose);
        Assert.Contains("| safety |", md);
    }

    [Fact]
    public void Chart_text_is_actually_drawn()
    {
        // Fonts resolve through SkiaSharp's native library; without a usable font the title band stays blank.
        var png = ReportCharts.GroupedBars("A title wide enough to see", ["gsm\naccuracy ↑"], ["base", "head"],
            [[new BarValue(0.2, new(0.1, 0.3)), new BarValue(0.6, new(0.5, 0.7))]]);
        using var bmp = SKBitmap.Decode(png);
        Assert.Equal((900, 430), (bmp.Width, bmp.Height));
        var dark = 0;
        for (var y = 0; y < 30; y++)
            for (var x = 0; x < bmp.Width; x++)
                if (bmp.GetPixel(x, y).Red < 128) dark++;
        Assert.InRange(dark, 200, bmp.Width * 30 / 3);
    }
}
