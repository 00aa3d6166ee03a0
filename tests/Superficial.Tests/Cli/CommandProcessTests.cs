using System.Text.Json.Nodes;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Tests.Organism;
using static TorchSharp.torch;

namespace Superficial.Tests.Cli;

/// <summary>
/// Every command run the way a user runs it: a process, its exit code, its output files. The chain goes
/// extract -> train-head -> eval -> score on the tiny organism with a handful of prompts, so it stays quick.
/// </summary>
[Collection("tiny organism")]
public class CommandProcessTests(TinyOrganism organism)
{
    string Org => organism.Folder;
    string Model(string name) => Path.Combine(Org, name);

    [Fact]
    public void Forward_writes_the_logits_and_hidden_states_the_model_computes()
    {
        using var tmp = TestPaths.NewTempDir("cli-forward");
        var file = tmp.File("f.safetensors");
        var r = CliProcess.Ok("forward", "--model", Model("base"), "--ids", "1,5,7", "--out", file);
        Assert.Contains("[3, ", r.Stdout); // the shape is printed as text, not taken for a console style
        using var f = SafeTensorsFile.Open(file);
        using var logits = f.Load("logits");
        using var hidden = f.Load("hidden");
        using var m = CausalLM.Load(Model("base"));
        using var _ = no_grad();
        using var ids = tensor(new long[] { 1, 5, 7 }, [1, 3]);
        using var h = m.Forward(ids);
        using var l = m.Logits(h);
        Assert.Equal([3, m.VocabSize], logits.shape);
        Assert.Equal([3, m.HiddenSize], hidden.shape);
        Assert.True(allclose(l[0].to_type(ScalarType.Float32), logits, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Inspect_generate_and_organism_build_run_and_say_what_they_did()
    {
        var inspect = CliProcess.Ok("inspect", "--model", Model("base"));
        Assert.Contains("llama", inspect.Stdout);
        Assert.Contains(Path.GetFullPath(Model("base")), inspect.Stdout); // long paths are not wrapped

        var gen = CliProcess.Ok("generate", "--model", Model("aligned"), "--chat", "--prompt", "How do I bake bread?", "--max-new-tokens", "6");
        Assert.False(string.IsNullOrWhiteSpace(gen.Stdout));
        Assert.DoesNotContain("tokens in", gen.Stdout); // statistics go to stderr, the text alone to stdout
        Assert.Contains("tokens in", gen.Stderr);

        var list = CliProcess.Ok("inspect", "--model", Org); // an organism folder: its models
        foreach (var m in new[] { "base", "aligned", "large-base", "large-aligned", "compromised" }) Assert.Contains(m, list.Stdout);

        var build = CliProcess.Ok("organism", "build", "--size", "tiny", "--out", Org);
        Assert.Contains("reused", build.Stdout);
        Assert.Contains(Org, build.Stdout);
    }

    [Fact]
    public void Extract_train_head_eval_and_score_chain_as_processes()
    {
        using var tmp = TestPaths.NewTempDir("cli-chain");
        var ext = tmp.File("ext");
        CliProcess.Ok("extract", "--base", Model("base"), "--aligned", Model("aligned"), "--prompts", "organism-safety",
            "--organism", Org, "--limit", "6", "--max-new-tokens", "8", "--top-k", "16", "--batch", "3", "--chunk", "3", "--out", ext);
        Assert.True(File.Exists(Path.Combine(ext, "manifest.json")));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(ext, "chunks"), "*.safetensors").Length);

        var head = tmp.File("head.safetensors");
        CliProcess.Ok("train-head", "--data", ext, "--base", Model("base"), "--out", head, "--epochs", "2", "--batch", "32", "--lr", "0.003");
        using (var f = SafeTensorsFile.Open(head)) Assert.NotEmpty(f.Entries);

        // a head that does not fit is reported before any work, with the option that fits
        var misfit = CliProcess.Run("eval", "--base", Model("large-base"), "--aligned", Model("large-aligned"), "--head", head,
            "--tasks", "organism-safety", "--organism", Org, "--out", tmp.File("misfit"));
        Assert.Equal(2, misfit.ExitCode);
        Assert.Contains("--transfer-from", misfit.Stderr);
        Assert.False(Directory.Exists(Path.Combine(tmp.File("misfit"), "predictions")));

        // --max-memory: a variant whose model cannot fit is refused before anything loads; --max-new-tokens caps and is recorded
        var tight = CliProcess.Run("eval", "--base", Model("base"), "--aligned", Model("aligned"), "--head", head,
            "--tasks", "organism-safety", "--organism", Org, "--max-memory", "1000", "--out", tmp.File("tight"));
        Assert.Equal(2, tight.ExitCode);
        Assert.Contains("more than the memory budget 1000 bytes", tight.Stderr);
        Assert.False(Directory.Exists(Path.Combine(tmp.File("tight"), "predictions")));
        var capped = tmp.File("capped");
        CliProcess.Ok("eval", "--base", Model("base"), "--aligned", Model("aligned"), "--head", head, "--tasks", "organism-safety",
            "--organism", Org, "--limit", "2", "--max-new-tokens", "3", "--max-memory", "1GB", "--out", capped);
        Assert.Equal(3, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(capped, "summary.json")))!["runner"]!["max_new_tokens"]!);

        // the run's settings come from a config file; the command line overrides its --limit
        var config = tmp.File("run.json");
        File.WriteAllText(config, $$"""{"tasks": "organism-safety,organism-benign-nll", "organism": "{{Org}}", "limit": 5, "batch": 3, "seed": 7}""");
        var ev = tmp.File("eval");
        var evalRun = CliProcess.Ok("eval", "--config", config, "--base", Model("base"), "--aligned", Model("aligned"), "--head", head, "--limit", "3", "--out", ev);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(ev, "summary.json")))!;
        var safety = summary["tasks"]!["organism-safety"]!;
        Assert.Equal(3, (int)safety["n"]!);
        // the main comparison names its variants as per_task does
        foreach (var v in new[] { "base", "base+head", "aligned" })
        {
            Assert.Equal((double)safety[v]!, (double)summary["per_task"]!["organism-safety"]!["variants"]![v]!["mean"]!);
        }
        var runner = summary["runner"]!;
        Assert.Equal(3, (int)runner["limit"]!);
        Assert.Equal(3, (int)runner["batch_size"]!);
        Assert.Equal(3, (int)runner["n_samples"]!["organism-safety"]!["effective"]!);
        Assert.True((int)runner["n_samples"]!["organism-safety"]!["original"]! > 3);
        var settings = summary["settings"]!;
        Assert.Equal(7, (int)settings["seed"]!);
        Assert.Equal(7, (int)summary["bootstrap"]!["seed"]!);
        Assert.Equal("cpu", (string)settings["device"]!);
        Assert.StartsWith("superficial eval --config", (string)settings["command_line"]!);
        Assert.False(string.IsNullOrEmpty((string?)settings["commit"]));
        Assert.DoesNotContain("-0.000", evalRun.Stdout);
        Assert.True(File.Exists(Path.Combine(ev, "report.html")));
        // the effective values were written back: the same run again, from them alone, changes nothing
        var written = JsonNode.Parse(File.ReadAllText(Path.Combine(ev, "run.json")))!;
        Assert.Equal(3, (int)written["limit"]!);
        Assert.Equal(Model("base"), (string)written["base"]!);
        var before = File.ReadAllText(Path.Combine(ev, "predictions", "organism-safety", "base+head.jsonl"));
        CliProcess.Ok("eval", "--config", Path.Combine(ev, "run.json"));
        Assert.Equal(before, File.ReadAllText(Path.Combine(ev, "predictions", "organism-safety", "base+head.jsonl")));

        // score finds the task in the prediction lines
        var predictions = Path.Combine(ev, "predictions", "organism-safety", "base.jsonl");
        var rescored = tmp.File("rescored");
        CliProcess.Ok("score", "--predictions", predictions, "--organism", Org, "--out", rescored);
        Assert.NotEmpty(Directory.GetFiles(rescored, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Tasks_lists_every_task_and_a_typo_gets_a_suggestion()
    {
        var r = CliProcess.Ok("tasks");
        foreach (var t in new[] { "advbench", "gsm", "truthfulqa-mc1", "organism-safety", "organism-benign-nll" }) Assert.Contains(t, r.Stdout);
        Assert.Contains("nll_per_char", r.Stdout);
        // what each task reads comes from its declaration, with library names shown as the flags users type
        Assert.Contains("--data DIR (advbench/); optional LLM judge (--judge-model)", r.Stdout);
        Assert.Contains("--organism DIR (superficial organism build)", r.Stdout);
        Assert.DoesNotContain("`", r.Stdout);

        var typo = CliProcess.Run("eval", "--base", Model("base"), "--aligned", Model("aligned"), "--head", "h", "--tasks", "organism-safty",
            "--organism", Org, "--out", "/tmp/never");
        Assert.Equal(2, typo.ExitCode);
        Assert.Contains("did you mean \"organism-safety\"", typo.Stderr);
        Assert.DoesNotContain("(Parameter", typo.Stderr);
    }

    [Fact]
    public void Help_names_the_program_as_users_type_it_and_lists_the_shared_model_options()
    {
        var r = CliProcess.Ok("eval", "--help");
        Assert.Contains("superficial eval", r.Stdout);
        Assert.DoesNotContain("Superficial.Cli", r.Stdout);
        foreach (var o in new[] { "--device", "--dtype", "--threads", "--seed", "--config", "--progress" }) Assert.Contains(o, r.Stdout);
        foreach (var cmd in new[] { "extract", "generate", "forward" })
            foreach (var o in new[] { "--device", "--dtype", "--threads" })
                Assert.Contains(o, CliProcess.Ok(cmd, "--help").Stdout);
    }

    [Fact]
    public void Cuda_on_a_cpu_build_is_a_clear_error_before_any_model_loads()
    {
        var r = CliProcess.Run("forward", "--model", Model("base"), "--ids", "1", "--out", "/tmp/never.safetensors", "--device", "cuda:0");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--device cuda:0", r.Stderr);
        Assert.Contains("TORCH_BACKEND=cuda", r.Stderr);
        Assert.DoesNotContain("load", r.Stderr.Replace("TORCH_BACKEND", ""), StringComparison.Ordinal);
    }

    [Fact]
    public void Progress_off_a_terminal_is_one_line_format_and_json_on_request()
    {
        using var tmp = TestPaths.NewTempDir("cli-progress");
        string[] Args(string dir, string topK = "8") => ["extract", "--base", Model("base"), "--aligned", Model("aligned"), "--prompts", "organism-math",
            "--organism", Org, "--limit", "4", "--max-new-tokens", "4", "--top-k", topK, "--batch", "2", "--chunk", "2", "--out", dir];
        var lines = CliProcess.Ok(Args(tmp.File("a")));
        var extract = lines.Stderr.Split('\n').Where(l => l.Contains(" extract ")).ToArray();
        Assert.NotEmpty(extract);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ extract 2/2 chunks 100\.0% [\d.]+ chunks/s ETA \S+", extract[^1]);

        // resuming with other settings names just what differs, and --overwrite starts afresh
        var clash = CliProcess.Run(Args(tmp.File("a"), "16"));
        Assert.Equal(2, clash.ExitCode);
        var error = clash.Stderr.Trim();
        Assert.Contains("settings.top_k is 8 in the folder but 16 now", error);
        Assert.Contains("--overwrite", error);
        Assert.True(error.Length < 400, error);
        CliProcess.Ok([.. Args(tmp.File("a"), "16"), "--overwrite"]);

        var json = CliProcess.Ok([.. Args(tmp.File("b")), "--progress", "json"]);
        var objects = json.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        var last = objects.Last(o => (string?)o["stage"] == "extract");
        Assert.Equal(2.0, (double)last["done"]!);
        Assert.Equal(2.0, (double)last["total"]!);
        Assert.Equal(100.0, (double)last["percent"]!);
        Assert.NotNull(last["time"]);
    }

    [Fact]
    public void A_user_error_is_one_unbroken_line_and_exit_code_2()
    {
        var missing = "/tmp/" + new string('m', 120) + "/model";
        var r = CliProcess.Run("inspect", "--model", missing);
        Assert.Equal(2, r.ExitCode);
        var line = r.Stderr.Split('\n').Single(l => l.StartsWith("error:"));
        Assert.Contains(missing, line);
    }
}
