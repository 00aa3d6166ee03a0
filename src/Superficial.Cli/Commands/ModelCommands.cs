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

    public static Option<string?> DtypeOption() =>
        Opt<string?>("--dtype", "Compute dtype: float32 (default on CPU), bfloat16 or float16.");

    public static ScalarType? ParseDtype(string? s) => s switch
    {
        null => null,
        "float32" or "f32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "f16" or "fp16" => ScalarType.Float16,
        _ => throw new ArgumentException($"--dtype {s}: expected float32, bfloat16 or float16."),
    };

    /// <summary>Loads a model with a progress bar.</summary>
    public static CausalLM LoadModel(string folder, ScalarType? dtype = null) =>
        WithProgress($"loading {Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/'))}", report =>
            CausalLM.Load(folder, dtype, new Progress<LoadProgress>(p => report(p.Done, p.Total, $"({p.Bytes / 1e6:0} MB)"))));

    static Command Inspect()
    {
        var model = Opt<string>("--model", "Model folder (config.json, *.safetensors, tokenizer files).", required: true);
        var cmd = new Command("inspect", "Describe a model folder: architecture, parameters, dtypes, tokenizer, chat template.") { model };
        cmd.SetAction(Action((p, _) =>
        {
            var dir = p.GetValue(model)!;
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
        var dtype = DtypeOption();
        var cmd = new Command("forward", "Run one token sequence and save logits and final hidden states (for parity checks).") { model, ids, output, dtype };
        cmd.SetAction(Action((p, _) =>
        {
            var tokens = p.GetValue(ids)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => long.TryParse(s, out var v) ? v : throw new ArgumentException($"--ids: \"{s}\" is not an integer.")).ToArray();
            if (tokens.Length == 0) throw new ArgumentException("--ids: give at least one token id.");
            using var m = LoadModel(p.GetValue(model)!, ParseDtype(p.GetValue(dtype)));
            if (tokens.Any(t => t < 0 || t >= m.VocabSize)) throw new ArgumentException($"--ids: ids must be in [0, {m.VocabSize}).");
            using var noGrad = no_grad();
            using var input = tensor(tokens, [1, tokens.Length]).to(m.Device);
            using var hidden = m.Forward(input);
            using var logits = m.Logits(hidden);
            using var h = hidden[0].to_type(ScalarType.Float32).cpu();
            using var l = logits[0].to_type(ScalarType.Float32).cpu();
            SafeTensorsWriter.Write(p.GetValue(output)!, [KeyValuePair.Create("logits", l), KeyValuePair.Create("hidden", h)]);
            AnsiConsole.MarkupLine(Markup.Escape($"wrote logits [{tokens.Length}, {m.VocabSize}] and hidden [{tokens.Length}, {m.HiddenSize}] to {p.GetValue(output)!}"));
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

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Head, TransferFrom, TransferMode, RecoverWith, ViaBase, ViaBaseReads }) c.Options.Add(o);
        }

        public SteeringRequest Read(ParseResult p, double alpha) => new()
        {
            Head = p.GetValue(Head), TransferFrom = p.GetValue(TransferFrom), TransferMode = p.GetValue(TransferMode)!,
            RecoverWith = p.GetValue(RecoverWith), ViaBase = p.GetValue(ViaBase), ViaBaseReads = p.GetValue(ViaBaseReads)!, Alpha = alpha,
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
        var seed = Opt("--seed", "Sampling seed.", defaultValue: () => 0L);
        var stop = Opt<string[]>("--stop", "Stop string (repeatable).");
        var alpha = Opt("--alpha", "Scale of the head's logit shift.", defaultValue: () => 1.0);
        var dtype = DtypeOption();
        var steering = new SteeringOptions();
        var cmd = new Command("generate", "Generate text from a model, optionally with a superficial head, a transferred head or recovery.")
            { model, prompt, chat, template, maxNew, temperature, topP, seed, stop, alpha, dtype };
        steering.AddTo(cmd);
        cmd.SetAction(Action((p, ct) =>
        {
            var dir = p.GetValue(model)!;
            var tok = TextTokenizer.Load(dir);
            using var m = LoadModel(dir, ParseDtype(p.GetValue(dtype)));
            using var steer = Steering.Build(m, tok, steering.Read(p, p.GetValue(alpha)));
            var spec = new PromptSpec(p.GetValue(prompt)!, p.GetValue(prompt)!);
            var chatTemplate = p.GetValue(chat) || p.GetValue(template) is not null ? tok.GetChatTemplate(p.GetValue(template)) : null;
            var ids = PromptFormat.Encode(tok, spec, chatTemplate);
            var options = new GenerationOptions
            {
                MaxNewTokens = p.GetValue(maxNew), Temperature = p.GetValue(temperature), TopP = p.GetValue(topP),
                Seed = p.GetValue(seed), StopStrings = p.GetValue(stop) ?? [],
            };
            if (steer.Transform is not null) AnsiConsole.MarkupLine($"[grey]logit transform: {Markup.Escape(steer.Description)}[/]");
            var watch = System.Diagnostics.Stopwatch.StartNew();
            IReadOnlyList<IReadOnlyList<int>>? side = PromptFormat.SideEncode(tok, spec, chatTemplate, steer.Transform) is { } s ? [s] : null;
            var result = new TextGenerator(m, tok).Generate([ids], options, steer.Transform, null, ct, side)[0];
            Console.WriteLine(result.Text);
            AnsiConsole.MarkupLine($"[grey]{result.TokenIds.Count} tokens in {watch.Elapsed.TotalSeconds:0.00} s, stopped by {result.Finish.ToString().ToLowerInvariant()}[/]");
            return 0;
        }));
        return cmd;
    }
}
