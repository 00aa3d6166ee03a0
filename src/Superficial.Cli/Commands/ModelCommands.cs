using System.CommandLine;
using Spectre.Console;
using Superficial.Alignment;
using Superficial.Evaluation;
using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using Superficial.Text;
using static Superficial.Cli.Cli;
using static TorchSharp.torch;


namespace Superficial.Cli.Commands;

/// <summary>inspect, forward, generate: running a Hugging Face model folder.</summary>
internal static class ModelCommands
{
    public static void Add(RootCommand root)
    {
        root.Subcommands.Add(Inspect());
        root.Subcommands.Add(Forward());
        root.Subcommands.Add(Generate());
    }

    /// <summary>--dtype alone (serve's per-variant options); commands that run a model take the whole shared set, <see cref="ModelRunOptions"/>.</summary>
    public static Option<string?> DtypeOption() => Opt<string?>("--dtype", ModelRunOptions.DtypeHelp);

    public static ScalarType? ParseDtype(string? s) => ModelRunOptions.ParseDtype(s);

    /// <summary>Loads a model with a progress bar.</summary>
    public static CausalLM LoadModel(string folder, ScalarType? dtype = null) =>
        WithProgress($"load {Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/'))}", "tensors", progress =>
            CausalLM.Load(folder, dtype, new Progress<LoadProgress>(p => progress.Report(p.Done, p.Total, $"{p.Bytes / 1e6:0} MB"))));

    static Command Inspect()
    {
        var model = Opt<string>("--model", "Model folder (config.json, *.safetensors, tokenizer files), or a folder of model folders (e.g. an organism).", required: true);
        var cmd = new Command("inspect", "Describe a model folder: architecture, parameters, dtypes, tokenizer, chat template; " +
                                         "for a folder of models (an organism), list them.") { model };
        cmd.SetAction(Action((p, _) =>
        {
            var dir = p.GetValue(model)!;
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--model {Path.GetFullPath(dir)}: no such folder.");
            if (!File.Exists(Path.Combine(dir, "config.json")))
            {
                var models = Directory.GetDirectories(dir).Where(d => File.Exists(Path.Combine(d, "config.json"))).Order(StringComparer.Ordinal).ToArray();
                if (models.Length == 0) throw new FileNotFoundException($"--model {Path.GetFullPath(dir)}: no config.json here or in its subfolders; is it a model folder?");
                var list = new Table().AddColumn("model").AddColumn("architecture").AddColumn("parameters").AddColumn("identity");
                foreach (var m in models)
                {
                    var c = ModelConfig.Load(Path.Combine(m, "config.json"));
                    list.AddRow(Markup.Escape(Path.GetFileName(m)), Markup.Escape($"{c.ModelType}, {c.NumLayers} layers, hidden {c.HiddenSize}, vocab {c.VocabSize}"),
                        $"{c.ParameterCount():N0}", Markup.Escape(ModelIdentity.Of(m)));
                }
                Say($"{models.Length} models in {Path.GetFullPath(dir)}");
                AnsiConsole.Write(list);
                return 0;
            }
            var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
            using var ckpt = Checkpoint.Open(dir);
            var dtypes = ckpt.Names.GroupBy(n => ckpt.Entry(n).DType).Select(g => $"{DTypes.Name(g.Key)} x{g.Count()}");
            var table = new Table().AddColumn("field").AddColumn("value").HideHeaders();
            void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
            Row("folder", Path.GetFullPath(dir));
            Row("architecture", config.ModelType + (config.IsGpt2 ? "" :
                $" ({config.NumLayers} layers, hidden {config.HiddenSize}, {config.NumHeads} heads / {config.NumKvHeads} kv heads, head_dim {config.HeadDim}, mlp {config.IntermediateSize})"));
            if (config.IsGpt2) Row("layers", $"{config.NumLayers} layers, hidden {config.HiddenSize}, {config.NumHeads} heads, mlp {config.IntermediateSize}");
            Row("parameters", $"{config.ParameterCount():N0}");
            Row("vocabulary", config.VocabSize.ToString());
            Row("positions", config.IsGpt2 ? $"learned, {config.MaxPositions}" :
                $"rotary theta {config.RopeTheta}{(config.RopeScaling is { } s ? $", {s.Type} scaling x{s.Factor}" : "")}, max {config.MaxPositions}" +
                (config.SlidingWindow is int w ? $", sliding window {w}" : ""));
            Row("features", string.Join("; ", config.Features()));
            Row("lm head", (config.TieWordEmbeddings ? "tied to the embeddings" : "separate (lm_head.weight)") +
                (config.FinalLogitSoftcap is double cap ? $", logits soft-capped at {cap} after it (the superficial head acts before the cap)" : ""));
            Row("checkpoint", $"{ckpt.Names.Count} tensors, {ckpt.TotalBytes / 1e6:0.0} MB, {string.Join(", ", dtypes)}");
            Row("identity", ModelIdentity.Of(dir));
            try
            {
                var tok = TextTokenizer.Load(dir);
                Row("tokenizer", tok.Describe());
                string chat;
                try { chat = tok.ChatTemplateSource is null ? "none" : tok.GetChatTemplate().Family; }
                catch (UnrecognizedChatTemplateException e) { chat = "unrecognised: " + e.Message; }
                Row("chat template", chat);
            }
            catch (Exception e) when (e is FileNotFoundException or InvalidDataException or ArgumentException or TokenizerFormatException)
            {
                Row("tokenizer", "not loadable: " + e.Message);
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return cmd;
    }

    static Command Forward()
    {
        var model = Opt<string>("--model", "Model folder.", required: true);
        var ids = Opt<string>("--ids", "Comma-separated token ids, e.g. 1,15043,3186.", required: true);
        var output = Opt<string>("--out", "Output .safetensors with F32 tensors logits [T, vocab] and hidden [T, hidden].", required: true);
        var run = new ModelRunOptions();
        var cmd = new Command("forward", "Run one token sequence and save logits and final hidden states (for parity checks).") { model, ids, output };
        run.AddTo(cmd);
        cmd.SetAction(Action((p, _) =>
        {
            var settings = run.Read(p);
            var tokens = p.GetValue(ids)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => long.TryParse(s, out var v) ? v : throw new ArgumentException($"--ids: \"{s}\" is not an integer.")).ToArray();
            if (tokens.Length == 0) throw new ArgumentException("--ids: give at least one token id.");
            using var m = LoadModel(p.GetValue(model)!, settings.Dtype);
            if (tokens.Any(t => t < 0 || t >= m.VocabSize)) throw new ArgumentException($"--ids: ids must be in [0, {m.VocabSize}).");
            using var noGrad = no_grad();
            using var input = tensor(tokens, [1, tokens.Length]).to(m.Device);
            using var hidden = m.Forward(input);
            using var logits = m.Logits(hidden);
            using var h = hidden[0].to_type(ScalarType.Float32).cpu();
            using var l = logits[0].to_type(ScalarType.Float32).cpu();
            SafeTensorsWriter.Write(p.GetValue(output)!, [KeyValuePair.Create("logits", l), KeyValuePair.Create("hidden", h)]);
            Say($"wrote logits [{tokens.Length}, {m.VocabSize}] and hidden [{tokens.Length}, {m.HiddenSize}] to {Path.GetFullPath(p.GetValue(output)!)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The head / transfer / recovery flags shared by generate and eval.</summary>
    public sealed class SteeringOptions
    {
        public readonly Option<string?> Head = Opt<string?>("--head", "Superficial head (.safetensors) to apply (base + head).");
        public readonly Option<string?> TransferFrom = Opt<string?>("--transfer-from", "Small base model the --head was trained on: its logit shift steers this (larger) model.");
        public readonly Option<string> TransferMode = Opt("--transfer-mode", "offset (run the small model beside) or direct (same hidden size only).", defaultValue: () => "offset");
        public readonly Option<string?> RecoverWith = Opt<string?>("--recover-with", "Head that restores a compromised model's alignment.");
        public readonly Option<string?> ViaBase = Opt<string?>("--via-base", "With --recover-with: original base model run beside, whose shift is added.");
        public readonly Option<string> ViaBaseReads = Opt("--via-base-reads",
            "What the --via-base model reads: raw (the raw prompt, as at extraction) or same (the chat-formatted tokens).", defaultValue: () => "raw");
        public readonly Option<bool> AllowOtherBase = Opt<bool>("--allow-other-base",
            "Apply the head even though the model is not the base it was trained on (a deliberate transfer).");

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Head, TransferFrom, TransferMode, RecoverWith, ViaBase, ViaBaseReads, AllowOtherBase }) c.Options.Add(o);
        }

        public SteeringRequest Read(ParseResult p, double alpha) => new()
        {
            Head = p.GetValue(Head), TransferFrom = p.GetValue(TransferFrom), TransferMode = Choices.Parse<TransferMode>("--transfer-mode", p.GetValue(TransferMode)!),
            RecoverWith = p.GetValue(RecoverWith), ViaBase = p.GetValue(ViaBase), ViaBaseReads = Choices.Parse<SideModelReads>("--via-base-reads", p.GetValue(ViaBaseReads)!), Alpha = alpha,
            AllowOtherBase = p.GetValue(AllowOtherBase),
        };
    }

    static Command Generate()
    {
        var model = Opt<string>("--model", "Model folder.", required: true);
        var prompt = Opt<string>("--prompt", "Prompt text.", required: true);
        var chat = Opt<bool>("--chat", "Wrap the prompt in the model's chat template (one user turn).");
        var template = Opt<string?>("--chat-template", "Chat template family name (llama2, llama3, chatml, mistral, zephyr, phi3) or a .jinja file.");
        var maxNew = Opt("--max-new-tokens", "Tokens to generate at most.", defaultValue: () => 128);
        var temperature = Opt("--temperature", "0 = greedy; > 0 samples.", defaultValue: () => 0.0);
        var topP = Opt("--top-p", "Nucleus sampling mass.", defaultValue: () => 1.0);
        var stop = Opt<string[]>("--stop", "Stop string (repeatable).");
        var alpha = Opt("--alpha", "Scale of the head's logit shift.", defaultValue: () => 1.0);
        var run = new ModelRunOptions(seedHelp: "Sampling seed (with --temperature > 0).");
        var steering = new SteeringOptions();
        var cmd = new Command("generate", "Generate text from a model, optionally with a superficial head, a transferred head or recovery. " +
                                          "The text goes to stdout; statistics to stderr.")
            { model, prompt, chat, template, maxNew, temperature, topP, stop, alpha };
        run.AddTo(cmd);
        steering.AddTo(cmd);
        cmd.SetAction(Action((p, ct) =>
        {
            var settings = run.Read(p);
            var dir = p.GetValue(model)!;
            var request = steering.Read(p, p.GetValue(alpha));
            SteeringPreflight.Check(dir, request); // before the model loads
            var tok = TextTokenizer.Load(dir);
            using var m = LoadModel(dir, settings.Dtype);
            using var steer = Steering.Build(m, tok, request);
            var spec = new PromptSpec(p.GetValue(prompt)!, p.GetValue(prompt)!);
            var chatTemplate = p.GetValue(chat) || p.GetValue(template) is not null ? tok.GetChatTemplate(p.GetValue(template)) : null;
            var ids = PromptFormat.Encode(tok, spec, chatTemplate);
            var options = new GenerationOptions
            {
                MaxNewTokens = p.GetValue(maxNew), Temperature = p.GetValue(temperature), TopP = p.GetValue(topP),
                Seed = settings.Seed, StopStrings = p.GetValue(stop) ?? [],
            };
            if (steer.Transform is not null) Note($"logit transform: {steer.Description}");
            var watch = System.Diagnostics.Stopwatch.StartNew();
            IReadOnlyList<IReadOnlyList<int>>? side = PromptFormat.SideEncode(tok, spec, chatTemplate, steer.Transform) is { } s ? [s] : null;
            var result = new TextGenerator(m, tok).Generate([ids], options, steer.Transform, null, ct, side)[0];
            Console.WriteLine(result.Text);
            Note($"{result.TokenIds.Count} tokens in {watch.Elapsed.TotalSeconds:0.00} s, stopped by {result.Finish.ToString().ToLowerInvariant()}");
            return 0;
        }));
        return cmd;
    }
}
