using Superficial.Evaluation;
using Superficial.Evaluation.Tasks;

namespace Superficial.Tests.Evaluation.Tasks;

public sealed class GsmTaskTests : IDisposable
{
    readonly TaskFixture _data = new();
    public void Dispose() => _data.Dispose();

    [Fact]
    public void SplitsAndTargets()
    {
        var task = GsmTask.Create(new TaskOptions(_data.DataDir));
        var extraction = task.ExtractionSplit();
        Assert.Equal(1000, extraction.Count);                       // first 1000 of 1003 train problems
        Assert.Equal("What is 999 + 1?", extraction[^1].Input);
        var eval = task.EvaluationSplit();
        Assert.Equal(["9", "1234", "-5"], eval.Select(e => e.Target));  // thousands separator removed; blank line skipped
        Assert.Equal(["test-0", "test-1", "test-2"], eval.Select(e => e.Id));
    }

    [Fact]
    public void PromptFormsMatchTheReference()
    {
        var task = GsmTask.Create(new TaskOptions(_data.DataDir));
        var p = task.BuildPrompt(task.EvaluationSplit()[0]);
        Assert.Equal("Answer the following question.\n\nQuestion: How many eggs?\nAnswer:", p.Raw);
        Assert.Equal("Answer the following question.\n\nQuestion: How many eggs?", p.User);
        Assert.Equal("Answer:", p.ResponsePrefix);
        Assert.Contains("Question:", task.StopStrings);
    }

    [Theory]
    [InlineData(1, "She sells 9 eggs, so she makes $1,234 a day.", 1, "1234")]
    [InlineData(0, " 3 + 4 = 7, so 16 - 7 = 9.\n\nQuestion: what is 2 + 2?\nAnswer: 4", 1, "9")]   // trimmed at "Question:"
    [InlineData(0, "The answer is 9.5", 0, "9.5")]
    [InlineData(2, "The loss is 5 dollars.", 1, "5")]          // punctuation ("-") ignored, as the reference's exact_match does
    [InlineData(0, "I do not know.", 0, "I do not know.")]     // no number: the whole text is the prediction
    [InlineData(1, "12,34,5 and then 1,234", 1, "1234")]
    public async Task ScoresLastNumberByExactMatch(int example, string output, int expected, string prediction)
    {
        var task = GsmTask.Create(new TaskOptions(_data.DataDir));
        var score = await task.ScoreAsync(task.EvaluationSplit()[example], output, ScoringContext.None);
        Assert.Equal(expected, score.Value);
        Assert.Equal(prediction, score.Details!["prediction"]);
    }

    [Fact]
    public void ReferenceHelpers()
    {
        Assert.Equal("1234567", GsmTask.ExtractAnswer("total 1,234,567"));
        Assert.Equal(".5", GsmTask.ExtractAnswer("it is .5"));
        Assert.Equal(" 18 ", GsmTask.TrimOutput(" 18 Comment: blah"));
        Assert.True(GsmTask.ExactMatch("18", "18"));
        Assert.False(GsmTask.ExactMatch("18", "180"));
    }

    [Fact]
    public void BadLineIsNamed()
    {
        _data.Write("gsm/test.jsonl", "{\"question\": \"q\", \"answer\": \"no final line\"}\n");
        var e = Assert.Throws<TaskDataException>(() => GsmTask.Create(new TaskOptions(_data.DataDir)).EvaluationSplit());
        Assert.Contains("test.jsonl:1", e.Message);
        Assert.Contains("####", e.Message);
    }
}
