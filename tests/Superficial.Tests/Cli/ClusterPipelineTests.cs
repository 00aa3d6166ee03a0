using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Superficial.Tests.Organism;
using YamlDotNet.RepresentationModel;

namespace Superficial.Tests.Cli;

/// <summary>
/// The cluster recipes in deploy/ (a Slurm submit script with job arrays, a Kubernetes manifest of Indexed
/// Jobs) run the whole pipeline, extract shards -> train-head -> eval shards -> eval merge, here with two
/// shards and the tiny organism, and give the files a single run gives (apart from timings). Slurm's sbatch
/// and kubectl are stood in for (tests/fixtures/cluster); the jobs' own commands run as they are written,
/// with the environment the scheduler would give them.
/// </summary>
[Collection("tiny organism")]
public class ClusterPipelineTests(TinyOrganism organism)
{
    const int Shards = 2;
    const string Prompts = "organism-safety"; // one source keeps the test short; the recipes loop over a comma-separated list
    const string Tasks = "organism-safety,organism-benign-nll";
    const string ExtractArgs = "--limit 4 --max-new-tokens 6 --top-k 16 --batch 2 --chunk 2";
    const string TrainArgs = "--epochs 2 --batch 32 --lr 0.003";
    const string EvalArgs = "--limit 5 --batch 2";

    string Org => organism.Folder;
    string Model(string name) => Path.Combine(Org, name);
    // Every run works in the same folder (one at a time: the tests of this collection run in turn), so the
    // paths recorded in heads and summaries agree; the single run is then kept beside it.
    string Work => Path.Combine(organism.Root.Path, "cluster-work");
    string Single => Path.Combine(organism.Root.Path, "cluster-single");
    static readonly object Gate = new();

    static string Repository =>
        Path.GetDirectoryName(Path.GetDirectoryName(TestPaths.Fixtures))!;

    static string[] Words(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The single run the recipes must reproduce: the same commands, one process each, no shards.</summary>
    void EnsureSingleRun()
    {
        lock (Gate)
        {
            if (Directory.Exists(Single)) return;
            Fresh(Work);
            foreach (var p in Prompts.Split(','))
                CliProcess.Ok(["extract", "--base", Model("base"), "--aligned", Model("aligned"), "--prompts", p, "--out", Path.Combine(Work, "ext", p),
                    "--organism", Org, .. Words(ExtractArgs)]);
            CliProcess.Ok(["train-head", "--extractions", .. Directory.GetDirectories(Path.Combine(Work, "ext")).Order(StringComparer.Ordinal),
                "--base", Model("base"), "--out", Path.Combine(Work, "head.safetensors"), .. Words(TrainArgs)]);
            CliProcess.Ok([.. EvalCommand(), .. Words(EvalArgs)]);
            Directory.Move(Work, Single);
        }
    }

    string[] EvalCommand() => ["eval", "--base", Model("base"), "--aligned", Model("aligned"), "--head", Path.Combine(Work, "head.safetensors"),
        "--tasks", Tasks, "--out", Path.Combine(Work, "eval"), "--organism", Org];

    static void Fresh(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.CreateDirectory(dir);
    }

    /// <summary>The settings every recipe reads from its environment (Slurm) or ConfigMap (Kubernetes).</summary>
    Dictionary<string, string> Settings() => new()
    {
        ["BASE"] = Model("base"), ["ALIGNED"] = Model("aligned"), ["PROMPTS"] = Prompts, ["TASKS"] = Tasks, ["WORK"] = Work,
        ["DATA_ARGS"] = $"--organism {Org}", ["EXTRACT_ARGS"] = ExtractArgs, ["TRAIN_ARGS"] = TrainArgs, ["EVAL_ARGS"] = EvalArgs,
    };

    /// <summary>A folder for PATH with `superficial` (the built program) and the given stand-ins from tests/fixtures/cluster.</summary>
    static string Bin(TempDir tmp, params string[] fakes)
    {
        var bin = tmp.File("bin");
        Directory.CreateDirectory(bin);
        var program = Path.Combine(bin, "superficial");
        File.WriteAllText(program, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "Superficial.Cli.dll")}' \"$@\"\n");
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var f in fakes) File.CreateSymbolicLink(Path.Combine(bin, f), Path.Combine(TestPaths.Fixtures, "cluster", f));
        return bin;
    }

    static CliResult Run(IReadOnlyList<string> command, IDictionary<string, string> env, int timeoutSeconds = 300)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        psi.Environment["SUPERFICIAL_THREADS"] = "1";
        foreach (var k in new[] { "SUPERFICIAL_JUDGE_MODEL", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX" }) psi.Environment.Remove(k);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{string.Join(' ', command)} ran over {timeoutSeconds} s");
        }
        return new CliResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Slurm_submit_script_runs_the_pipeline_as_job_arrays_and_gives_the_single_runs_results()
    {
        EnsureSingleRun();
        Fresh(Work);
        using var tmp = TestPaths.NewTempDir("slurm");
        var env = Settings();
        env["SHARDS"] = Shards.ToString();
        env["SUPERFICIAL"] = Path.Combine(Bin(tmp, "sbatch"), "superficial");
        env["PATH"] = tmp.File("bin") + ":" + Environment.GetEnvironmentVariable("PATH");
        env["FAKE_SLURM_DIR"] = tmp.Path;
        foreach (var script in new[] { "deploy/slurm/submit", "deploy/slurm/stage.sbatch" })
        {
            var syntax = Run(["bash", "-n", Path.Combine(Repository, script)], env);
            Assert.True(syntax.ExitCode == 0, $"{script}: {syntax}");
        }

        var r = Run([Path.Combine(Repository, "deploy/slurm/submit")], env);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("submitted: extract 1001, train-head 1002, eval 1003, merge 1004", r.Stdout);
        Assert.Equal(["1001 superficial-extract array=0-1", "1002 superficial-train-head array=none", "1003 superficial-eval array=0-1", "1004 superficial-merge array=none"],
            File.ReadAllLines(tmp.File("submitted")));
        // each array task did its own slice
        Assert.Contains("worker 1/2", File.ReadAllText(tmp.File("superficial-extract-1.log")));
        Assert.Contains("shard 1/2 done", File.ReadAllText(tmp.File("superficial-eval-1.log")));
        AssertSameAsSingleRun();
    }

    [Fact]
    public void Kubernetes_manifest_runs_the_pipeline_as_indexed_jobs_and_gives_the_single_runs_results()
    {
        EnsureSingleRun();
        Fresh(Work);
        using var tmp = TestPaths.NewTempDir("k8s");
        var manifest = Path.Combine(Repository, "deploy/k8s/pipeline.yaml");
        var yaml = new YamlStream();
        using (var reader = new StreamReader(manifest)) yaml.Load(reader);
        var docs = yaml.Documents.Select(d => (YamlMappingNode)d.RootNode).ToArray();
        string Kind(YamlMappingNode d) => Scalar(d, "kind");
        string Stage(YamlMappingNode d) => Scalar(Map(Map(d, "metadata"), "labels"), "superficial/stage");

        // what the manifest must hold together
        var config = docs.Single(d => Kind(d) == "ConfigMap");
        var configName = Scalar(Map(config, "metadata"), "name");
        var configData = Map(config, "data").Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value!, kv => ((YamlScalarNode)kv.Value).Value ?? "");
        foreach (var key in Settings().Keys) Assert.True(configData.ContainsKey(key), $"the ConfigMap has no {key}");
        var jobs = docs.Where(d => Kind(d) == "Job").ToArray();
        Assert.Equal(["extract", "train-head", "eval", "merge"], jobs.Select(Stage));
        var claim = Scalar(Map(docs.Single(d => Kind(d) == "PersistentVolumeClaim"), "metadata"), "name");
        foreach (var job in jobs)
        {
            var name = Scalar(Map(job, "metadata"), "name");
            Assert.Equal("superficial-" + Stage(job), name);
            var spec = Map(job, "spec");
            var pod = Map(Map(spec, "template"), "spec");
            var container = (YamlMappingNode)Seq(pod, "containers").Single();
            Assert.Equal(configName, Scalar(Map((YamlMappingNode)Seq(container, "envFrom").Single(), "configMapRef"), "name"));
            var mount = Scalar((YamlMappingNode)Seq(container, "volumeMounts").Single(), "mountPath");
            Assert.Equal(claim, Scalar(Map((YamlMappingNode)Seq(pod, "volumes").Single(), "persistentVolumeClaim"), "claimName"));
            // every folder the ConfigMap names is on the shared volume
            foreach (var (k, v) in configData)
                foreach (var path in Words(v).Where(w => w.StartsWith('/')))
                    Assert.True(path.StartsWith(mount + "/"), $"{k}: {path} is not under the volume mounted at {mount} in {name}");
            if (Stage(job) is "extract" or "eval")
            {
                Assert.Equal("Indexed", Scalar(spec, "completionMode"));
                var completions = Scalar(spec, "completions");
                Assert.Equal(completions, Scalar(spec, "parallelism"));
                Assert.Equal(completions, Env(container).Single(e => e.Name == "SHARDS").Value);
            }
        }

        // the driver applies the stages in order, each after the one before completed
        var log = tmp.File("kubectl.log");
        var env = new Dictionary<string, string>
        {
            ["PATH"] = Bin(tmp, "kubectl") + ":" + Environment.GetEnvironmentVariable("PATH"), ["FAKE_KUBECTL_LOG"] = log, ["POLL_SECONDS"] = "0",
        };
        var driver = Run([Path.Combine(Repository, "deploy/k8s/run")], env);
        Assert.True(driver.ExitCode == 0, driver.ToString());
        var calls = File.ReadAllLines(log);
        var stages = new List<string>();
        for (int i = 0; i < calls.Length; i++)
        {
            var apply = Regex.Match(calls[i], @"^apply -f (\S+) -l superficial/stage=(\S+)$");
            Assert.True(apply.Success, $"unexpected kubectl call: {calls[i]}");
            Assert.Equal(manifest, apply.Groups[1].Value);
            stages.Add(apply.Groups[2].Value);
            if (apply.Groups[2].Value == "setup") continue;
            Assert.StartsWith($"get job superficial-{apply.Groups[2].Value} ", calls[++i]);
        }
        Assert.Equal(["setup", "extract", "train-head", "eval", "merge"], stages);

        // then each Job's pods, as Kubernetes runs them: the ConfigMap (with this test's folders) and the
        // container's env in the environment, $(VAR) references expanded, JOB_COMPLETION_INDEX for an
        // indexed Job's pods, which run at once; N = 2 in place of the manifest's completions/SHARDS
        foreach (var stage in stages.Skip(1))
        {
            var job = jobs.Single(j => Stage(j) == stage);
            var container = (YamlMappingNode)Seq(Map(Map(Map(job, "spec"), "template"), "spec"), "containers").Single();
            var podEnv = new Dictionary<string, string>(configData);
            foreach (var (k, v) in Settings()) podEnv[k] = v;
            podEnv.Remove("XDG_CACHE_HOME");
            foreach (var (name, value) in Env(container)) podEnv[name] = name == "SHARDS" ? Shards.ToString() : Expand(value, podEnv);
            podEnv["PATH"] = tmp.File("bin") + ":" + Environment.GetEnvironmentVariable("PATH");
            var command = Seq(container, "command").Concat(Seq(container, "args")).Select(n => Expand(((YamlScalarNode)n).Value!, podEnv)).ToArray();
            var indexed = Map(job, "spec").Children.ContainsKey("completionMode");
            var pods = Enumerable.Range(0, indexed ? Shards : 1).Select(i =>
            {
                var e = new Dictionary<string, string>(podEnv);
                if (indexed) e["JOB_COMPLETION_INDEX"] = i.ToString();
                return Task.Run(() => Run(command, e));
            }).ToArray();
            foreach (var pod in pods) Assert.True(pod.Result.ExitCode == 0, $"{stage}: {pod.Result}");
        }
        AssertSameAsSingleRun();
    }

    [Fact]
    public void Eval_shards_given_with_shard_merge_into_the_single_run_and_merge_waits_for_all_of_them()
    {
        EnsureSingleRun();
        Fresh(Work);
        File.Copy(Path.Combine(Single, "head.safetensors"), Path.Combine(Work, "head.safetensors"));
        var eval = Path.Combine(Work, "eval");

        var second = CliProcess.Ok([.. EvalCommand(), .. Words(EvalArgs), "--shard", "1/2"]);
        Assert.Contains($"shard 1/2 done -> {Path.Combine(eval, "shards", "1-of-2")}; once all 2 are: superficial eval merge --out {eval}", second.Stdout);
        var early = CliProcess.Run("eval", "merge", "--out", eval);
        Assert.Equal(2, early.ExitCode);
        Assert.Contains("shard(s) 0/2", early.Stderr);
        Assert.False(File.Exists(Path.Combine(eval, "summary.json")));

        CliProcess.Ok([.. EvalCommand(), .. Words(EvalArgs), "--shard", "0/2"]);
        var merged = CliProcess.Ok("eval", "merge", "--out", eval);
        Assert.Contains("merged 2 shards", merged.Stdout);
        Assert.Contains("organism-safety", merged.Stdout); // the headline table, as eval prints it
        AssertSameAsSingleRun(evalOnly: true);

        // the merged run.json repeats the whole run (not one shard), as a single run's does
        var runJson = JsonNode.Parse(File.ReadAllText(Path.Combine(eval, "run.json")))!.AsObject();
        var singleJson = JsonNode.Parse(File.ReadAllText(Path.Combine(Single, "eval", "run.json")))!.AsObject();
        foreach (var o in new[] { runJson, singleJson }) { o.Remove("_date"); o.Remove("_command_line"); }
        Assert.Equal(singleJson.ToJsonString(), runJson.ToJsonString());

        // a run that was never split has nothing to merge
        Assert.Contains("nothing to merge", CliProcess.Ok("eval", "merge", "--out", Path.Combine(Single, "eval")).Stdout);
    }

    /// <summary>The files under Work equal the single run's: extractions, head and predictions byte for byte;
    /// summary.json and report.md apart from timings, the date and the command line.</summary>
    void AssertSameAsSingleRun(bool evalOnly = false)
    {
        foreach (var sub in new[] { "eval/predictions", "eval/report_files" }.Concat(evalOnly ? [] : Prompts.Split(',').Select(p => $"ext/{p}/chunks")))
        {
            var files = Directory.GetFiles(Path.Combine(Single, sub), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Single, f)).Order().ToArray();
            Assert.NotEmpty(files);
            Assert.Equal(files, Directory.GetFiles(Path.Combine(Work, sub), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Work, f)).Order());
            foreach (var f in files)
                Assert.True(File.ReadAllBytes(Path.Combine(Single, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(Work, f))), $"{f} differs from the single run's");
        }
        Assert.Equal(HeadTensors(Single), HeadTensors(Work));
        Assert.Equal(Summary(Single), Summary(Work));
        Assert.Equal(Report(Single), Report(Work));
    }

    static string Summary(string run)
    {
        var o = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval", "summary.json")))!.AsObject();
        o.Remove("timings");
        o["settings"]!.AsObject().Remove("date");
        o["settings"]!.AsObject().Remove("command_line");
        return o.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    // report.md up to its last table (the timings), without the date and command-line rows
    static string Report(string run)
    {
        var lines = File.ReadAllLines(Path.Combine(run, "eval", "report.md"));
        var timings = Array.FindLastIndex(lines, l => l.StartsWith("| task | variant | examples run"));
        Assert.True(timings > 0, "report.md has no timings table");
        return string.Join('\n', lines.Take(timings).Where(l => !l.StartsWith("| date |") && !l.StartsWith("| command\\_line |")));
    }

    static string HeadTensors(string run)
    {
        using var f = Superficial.Tensors.SafeTensorsFile.Open(Path.Combine(run, "head.safetensors"));
        return string.Join(";", f.Entries.Select(e =>
        {
            using var t = f.Load(e.Name);
            return e.Name + ":" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(t.bytes));
        }));
    }

    static YamlMappingNode Map(YamlMappingNode n, string key) => (YamlMappingNode)n.Children[new YamlScalarNode(key)];
    static YamlSequenceNode Seq(YamlMappingNode n, string key) => (YamlSequenceNode)n.Children[new YamlScalarNode(key)];
    static string Scalar(YamlMappingNode n, string key) => ((YamlScalarNode)n.Children[new YamlScalarNode(key)]).Value!;

    static IEnumerable<(string Name, string Value)> Env(YamlMappingNode container) =>
        container.Children.ContainsKey(new YamlScalarNode("env"))
            ? Seq(container, "env").Cast<YamlMappingNode>().Select(e => (Scalar(e, "name"), Scalar(e, "value"))) : [];

    /// <summary>Kubernetes' expansion of command, args and env values: $(VAR) when VAR is defined, $$ for $; anything else is left as written.</summary>
    static string Expand(string text, IReadOnlyDictionary<string, string> env) =>
        Regex.Replace(text, @"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", m =>
            m.Value == "$$" ? "$" : env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);
}
