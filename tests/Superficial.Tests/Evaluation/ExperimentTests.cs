using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Evaluation.Runner;

namespace Superficial.Tests.Evaluation;

/// <summary>The variants and comparisons an experiment plans from its options (no model is loaded).</summary>
public class ExperimentTests
{
    static string[] Names(Experiment e) => e.Variants.Select(v => v.Name).ToArray();
    static string[] Comparisons(Experiment e) => e.Comparisons.Select(c => $"{c.Name}:{c.Low}>{c.Mid}>{c.High}").ToArray();

    [Fact]
    public void Main_comparison_is_base_head_aligned_with_only_the_aligned_model_on_its_chat_template()
    {
        var e = new Experiment(new ExperimentOptions { Base = "B", Aligned = "A", Head = "h", ChatTemplate = "llama2" });
        Assert.Equal(["base", "base+head", "aligned"], Names(e));
        Assert.Equal(["superficial:base>base+head>aligned"], Comparisons(e));
        Assert.Equal([false, false, true], e.Variants.Select(v => v.Chat));
        Assert.Equal(["B", "B", "A"], e.Variants.Select(v => v.Model));
        Assert.Equal("h", e.Variants[1].Steering.Head);
        Assert.True(e.Variants[0].Steering.IsEmpty);
        Assert.True(e.Variants[2].Steering.IsEmpty);
        Assert.Equal("llama2", e.Variants[2].ChatTemplate);
    }

    [Fact]
    public void The_demo_experiment_names_every_variant_and_comparison_as_summary_json_does()
    {
        var e = new Experiment(new ExperimentOptions
        {
            Base = "B", Aligned = "A", Head = "h", LargeBase = "LB", LargeAligned = "LA", Compromised = "C", RecoverWith = "h",
            ViaBase = "B", ViaBaseReads = [SideModelReads.Raw, SideModelReads.Same], Alphas = [0.5, 1.0, 2.0], ExtraHeads = ["h2", "h3"],
        });
        Assert.Equal([
            "base", "base+head@a=0.5", "base+head", "base+head@a=2", "aligned", "base+head#2", "base+head#3",
            "large-base", "large-base+head@a=0.5", "large-base+head", "large-base+head@a=2", "large-aligned",
            "compromised",
            "compromised+head@a=0.5", "compromised+head-via-base@a=0.5", "compromised+head-via-base-same@a=0.5",
            "compromised+head", "compromised+head-via-base", "compromised+head-via-base-same",
            "compromised+head@a=2", "compromised+head-via-base@a=2", "compromised+head-via-base-same@a=2",
        ], Names(e));
        Assert.Equal([
            "superficial:base>base+head>aligned", "superficial#2:base>base+head#2>aligned", "superficial#3:base>base+head#3>aligned",
            "transfer:large-base>large-base+head>large-aligned", "recovery:compromised>compromised+head>aligned",
            "recovery-via-base:compromised>compromised+head-via-base>aligned",
            "recovery-via-base-same:compromised>compromised+head-via-base-same>aligned",
        ], Comparisons(e));
        var byName = e.Variants.ToDictionary(v => v.Name);
        Assert.Equal(0.5, byName["base+head@a=0.5"].Steering.Alpha);
        Assert.Equal("h3", byName["base+head#3"].Steering.Head);
        Assert.Equal(1.0, byName["base+head#3"].Steering.Alpha); // extra heads are not swept
        Assert.Equal("B", byName["large-base+head"].Steering.TransferFrom);
        Assert.Equal("LB", byName["large-base+head"].Model);
        Assert.Equal(SideModelReads.Same, byName["compromised+head-via-base-same@a=2"].Steering.ViaBaseReads);
        Assert.Equal(2.0, byName["compromised+head-via-base-same@a=2"].Steering.Alpha);
        Assert.Equal("B", byName["compromised+head-via-base"].Steering.ViaBase);
        Assert.Null(byName["compromised+head"].Steering.ViaBase);
        Assert.All(e.Variants.Where(v => v.Name.StartsWith("compromised")), v => Assert.True(v.Chat));
        // the alpha-sweep comparisons the runner derives from these names
        Assert.Equal(["superficial@a=0.5", "superficial@a=2"],
            Comparison.Superficial.AlphaSweep(Names(e)).Select(x => x.Comparison.Name));
    }

    [Fact]
    public void Transfer_from_a_small_base_evaluates_the_large_pair_only()
    {
        var e = new Experiment(new ExperimentOptions { Base = "LB", Aligned = "LA", Head = "h", TransferFrom = "SB", TransferMode = TransferMode.Direct });
        Assert.Equal(["large-base", "large-base+head", "large-aligned"], Names(e));
        Assert.Equal(["transfer:large-base>large-base+head>large-aligned"], Comparisons(e));
        Assert.Equal("SB", e.Variants[1].Steering.TransferFrom);
        Assert.Equal(TransferMode.Direct, e.Variants[1].Steering.TransferMode);
    }

    [Fact]
    public void Recovery_alone_adds_the_aligned_model_it_is_compared_with()
    {
        var e = new Experiment(new ExperimentOptions { Aligned = "A", Compromised = "C", RecoverWith = "h", AllowOtherBase = true });
        Assert.Equal(["aligned", "compromised", "compromised+head"], Names(e));
        Assert.Equal(["recovery:compromised>compromised+head>aligned"], Comparisons(e));
        Assert.Equal("h", e.Variants[2].Steering.RecoverWith);
        Assert.All(e.Variants, v => Assert.True(v.Steering.AllowOtherBase));
    }

    [Fact]
    public void Bad_options_name_the_option_and_the_cli_shows_its_flag()
    {
        var missing = Assert.Throws<ParameterException>(() => new Experiment(new ExperimentOptions { Base = "B", Head = "h" }));
        Assert.Equal("Aligned", missing.ParamName);
        Assert.Equal("missing `Aligned`.", missing.Message);
        var transfer = Assert.Throws<ParameterException>(() =>
            new Experiment(new ExperimentOptions { Base = "B", Aligned = "A", Head = "h", ExtraHeads = ["h2"], TransferFrom = "S" }));
        Assert.Equal("ExtraHeads", transfer.ParamName);
        Assert.Equal("several --head are evaluated against --base only, not with --transfer-from.",
            Superficial.Cli.FlagNames.Map(transfer.Message));
        var nothing = Assert.Throws<ParameterException>(() => new Experiment(new ExperimentOptions()));
        Assert.StartsWith("nothing to evaluate: give `Base`, `Aligned` and `Head`", nothing.Message);
        Assert.Throws<ParameterException>(() => new Experiment(new ExperimentOptions { Base = "B", Aligned = "A", Head = "h", LargeBase = "LB" }));
    }

    [Fact]
    public void Model_descriptions_name_the_folder_prompt_form_and_head()
    {
        var e = new Experiment(new ExperimentOptions { Base = "B", Aligned = "A", Head = "h", Alphas = [1.0, 2.0] });
        var d = e.ModelDescriptions();
        Assert.Equal($"{Path.GetFullPath("B")} (raw)", d["base"]);
        Assert.Equal($"{Path.GetFullPath("B")} (raw); head h", d["base+head"]);
        Assert.Equal($"{Path.GetFullPath("B")} (raw); head h, alpha 2", d["base+head@a=2"]);
        Assert.Equal($"{Path.GetFullPath("A")} (chat)", d["aligned"]);
    }

    [Fact]
    public void A_recovery_curve_names_each_compromised_model_with_its_recoveries_and_needs_the_plain_one()
    {
        var e = new Experiment(new ExperimentOptions
        {
            Aligned = "A", Compromised = "C10", RecoverWith = "h", ViaBase = "B", ViaBaseReads = [SideModelReads.Raw, SideModelReads.Same],
            MoreCompromised = [("compromised-s2", "C2"), ("compromised-benign", "CB")],
        });
        Assert.Equal([
            "aligned", "compromised", "compromised+head", "compromised+head-via-base", "compromised+head-via-base-same",
            "compromised-s2", "compromised-s2+head", "compromised-s2+head-via-base", "compromised-s2+head-via-base-same",
            "compromised-benign", "compromised-benign+head", "compromised-benign+head-via-base", "compromised-benign+head-via-base-same",
        ], Names(e));
        var s2 = e.Variants.Single(v => v.Name == "compromised-s2+head-via-base-same");
        Assert.Equal(("C2", "h", "B", SideModelReads.Same), (s2.Model, s2.Steering.RecoverWith, s2.Steering.ViaBase, s2.Steering.ViaBaseReads));
        Assert.True(e.Variants.Single(v => v.Name == "compromised-benign").Steering.IsEmpty);
        Assert.Contains("Compromised", Assert.Throws<ParameterException>(() => new Experiment(new ExperimentOptions
            { Aligned = "A", RecoverWith = "h", MoreCompromised = [("x", "X")] })).Message);
        Assert.Contains("twice", Assert.Throws<ParameterException>(() => new Experiment(new ExperimentOptions
            { Aligned = "A", Compromised = "C", RecoverWith = "h", MoreCompromised = [("x", "X"), ("x", "Y")] })).Message);
    }
}
