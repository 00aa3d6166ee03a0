using System.Text.Json.Nodes;
using Superficial.Evaluation.Report;
using Superficial.IO;

namespace Superficial.Tests.Evaluation.Report;

public class ReportFormatTests
{
    [Theory]
    [InlineData(-0.0, "0.000")]
    [InlineData(-0.0001, "0.000")]
    [InlineData(-0.0006, "-0.001")]
    [InlineData(0.25, "0.250")]
    public void Numbers_that_round_to_zero_have_no_minus_sign(double x, string expected) => Assert.Equal(expected, ReportFormat.Number(x));

    [Fact]
    public void A_settings_clash_names_only_the_fields_that_differ()
    {
        var a = JsonNode.Parse("""{"base": {"identity": "x", "vocab": 10}, "settings": {"top_k": 8, "batch": 2}}""");
        var b = JsonNode.Parse("""{"base": {"identity": "x", "vocab": 10}, "settings": {"top_k": 16, "batch": 2}, "extra": true}""");
        Assert.Equal([("settings.top_k", "8", "16"), ("extra", null, "true")], JsonDiff.Differences(a, b));
        Assert.Equal("settings.top_k is 8 in the folder but 16 now; extra is absent in the folder but true now", JsonDiff.Describe(a, b));
    }
}
