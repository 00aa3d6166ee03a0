using Superficial.Evaluation.Tasks;

namespace Superficial.Tests.Evaluation.Tasks;

public class CsvTableTests
{
    [Fact]
    public void ReadsQuotesDoubledQuotesAndLineBreaks()
    {
        using var dir = TestPaths.NewTempDir("csv");
        var path = dir.File("a.csv");
        File.WriteAllText(path, "\uFEFFa,b\r\n\"x, \"\"y\"\"\",\"two\nlines\"\r\nplain,\r\n");
        var csv = CsvTable.Read(path, "a", "b");
        Assert.Equal(2, csv.Rows.Count);
        Assert.Equal("x, \"y\"", csv.Get(csv.Rows[0].Fields, "a"));
        Assert.Equal("two\nlines", csv.Get(csv.Rows[0].Fields, "b"));
        Assert.Equal(("plain", ""), (csv.Get(csv.Rows[1].Fields, "a"), csv.Get(csv.Rows[1].Fields, "b")));
        Assert.Equal(4, csv.Rows[1].Line);
    }

    [Fact]
    public void ErrorsNameFileLineAndColumn()
    {
        using var dir = TestPaths.NewTempDir("csv");
        var path = dir.File("b.csv");
        File.WriteAllText(path, "a,b\n1,2\n3\n");
        Assert.Contains("b.csv:3", Assert.Throws<TaskDataException>(() => CsvTable.Read(path)).Message);
        Assert.Contains("\"goal\"", Assert.Throws<TaskDataException>(() => CsvTable.Read(path, "goal")).Message);
        File.WriteAllText(path, "a,b\n\"open,2\n");
        Assert.Contains("not closed", Assert.Throws<TaskDataException>(() => CsvTable.Read(path)).Message);
    }
}
