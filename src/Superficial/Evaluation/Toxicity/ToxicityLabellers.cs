using Superficial.Evaluation.Judges;

namespace Superficial.Evaluation.Toxicity;

/// <summary>The toxicity labellers a user can choose for real ToxiGen outputs (<c>--toxicity-labeller</c>).</summary>
public static class ToxicityLabellers
{
    public const string Encoder = "encoder";
    public const string NGram = "ngram";
    public const string Judge = "judge";
    /// <summary>The default.</summary>
    public const string Default = Encoder;
    /// <summary>The accepted names, for help texts and errors.</summary>
    public const string Choices = "encoder (all-MiniLM-L6-v2 embeddings + logistic regression, default), ngram (ML.NET n-gram logistic regression) or judge (the LLM judge)";

    /// <summary>
    /// Builds the named labeller: the two classifiers are trained on {dataDir}/toxigen (once; cached under
    /// {cacheDir}), the judge needs a judge client. "classifier", the n-gram labeller's former name, is still accepted.
    /// </summary>
    public static IToxicityLabeler Create(string? labeller, string? dataDir, string cacheDir, OpenAiJudgeClient? judge, Action<string>? log = null)
    {
        switch ((labeller ?? Default).Trim().ToLowerInvariant())
        {
            case Judge:
                return new JudgeToxicityLabeler(judge ?? throw new ParameterException(nameof(judge), "`labeller` judge needs a `judge` (an LLM judge client)."));
            case Encoder:
                return EncoderToxicityClassifier.LoadOrTrain(Data(dataDir), Path.Combine(cacheDir, "toxicity-encoder"), log: log);
            case NGram or "classifier":
                return ToxicityClassifier.LoadOrTrain(Data(dataDir), Path.Combine(cacheDir, "toxicity-classifier"), log: log);
            default:
                throw new ParameterException(nameof(labeller), $"`labeller` {labeller}: expected {Choices}.");
        }
    }

    static string Data(string? dataDir) => dataDir ?? throw new ParameterException(nameof(dataDir), "the toxigen task needs `dataDir` (its classifiers train on the ToxiGen extraction lines).");
}
