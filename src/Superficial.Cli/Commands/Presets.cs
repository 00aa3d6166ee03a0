using System.CommandLine;
using Superficial.Alignment;

namespace Superficial.Cli.Commands;

/// <summary>
/// --preset paper: the reference implementation's procedure (VITA-Group/Superficial_Alignment, train_logit.py and
/// eval/*/extract_logit.py). Extraction: greedy generation to 512 new tokens (or EOS) with no stop strings, top-500
/// aligned logits. Training: nn.Linear(hidden, hidden, bias=False) initialisation (uniform ±1/√hidden), Adam lr 1e-5,
/// batch 1000, 1000 epochs, the last 5% of positions (in storage order) held out, the last epoch's head kept.
/// </summary>
internal static class Presets
{
    public static string? Check(string? preset) => preset switch
    {
        null => null,
        "paper" => "paper",
        _ => throw new ArgumentException($"--preset {preset}: the only preset is \"paper\"."),
    };

    /// <summary>The paper's training settings, except for options the user gave explicitly.</summary>
    public static HeadTrainingOptions PaperTraining(HeadTrainingOptions o, Func<Option, bool> given,
        Option init, Option lr, Option batch, Option epochs) => o with
    {
        Init = given(init) ? o.Init : HeadInit.Random,
        LearningRate = given(lr) ? o.LearningRate : 1e-5,
        BatchSize = given(batch) ? o.BatchSize : 1000,
        Epochs = given(epochs) ? o.Epochs : 1000,
        HeldOutFraction = 0.05, HeldOutSplit = HeldOutSplit.Tail, KeepLast = true,
    };
}
