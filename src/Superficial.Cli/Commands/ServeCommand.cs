using System.CommandLine;
using System.CommandLine.Parsing;
using Spectre.Console;
using Superficial.Alignment;
using Superficial.Models;
using Superficial.Server;
using Superficial.Serving;
using Superficial.Text;
using static Superficial.Cli.Cli;

namespace Superficial.Cli.Commands;

/// <summary>serve: models with or without a superficial head behind an OpenAI-compatible HTTP endpoint.</summary>
internal static class ServeCommand
{
    public static void Add(RootCommand root) => root.Subcommands.Add(Build());

    /// <summary>The model options of generate, for the main variant and (re-parsed) for each --variant.</summary>
    sealed class VariantOptions
    {
        public readonly Option<string?> Model = Opt<string?>("--model", "Model folder.");
        public readonly Option<string?> Template = Opt<string?>("--chat-template", "Chat template family name or a .jinja file (default: the tokenizer's).");
        public readonly Option<double> Alpha = Opt("--alpha", "Scale of the head's logit shift (a request may override it: \"superficial\": {\"alpha\": x}).", defaultValue: () => 1.0);
        public readonly Option<string?> Dtype = ModelCommands.DtypeOption();
        public readonly ModelCommands.SteeringOptions Steering = new();

        public void AddTo(Command c)
        {
            c.Options.Add(Model); c.Options.Add(Template); c.Options.Add(Alpha); c.Options.Add(Dtype);
            Steering.AddTo(c);
        }
    }

    static Command Build()
    {
        var main = new VariantOptions();
        var name = Opt<string?>("--name", "Name of the variant the model options above describe (default: the model folder's name).");
        var variants = Opt<string[]>("--variant",
            "Another variant: NAME=OPTIONS with generate's model options, e.g. \"base+head=--model B --head H.safetensors\" (repeatable).");
        var host = Opt("--host", "Address to bind; anything but loopback needs --api-key.", defaultValue: () => "127.0.0.1");
        var port = Opt("--port", "Port (0: any free port, printed at start).", defaultValue: () => 8000);
        var apiKey = Opt<string?>("--api-key", "Bearer key clients must send (default: $SUPERFICIAL_API_KEY; required off loopback).");
        var logPrompts = Opt<bool>("--log-prompts", "Include prompt text in the request log (off: only sizes and timings).");
        var maxBatch = Opt("--max-batch", "Sequences decoded together per variant.", defaultValue: () => 16);
        var maxQueue = Opt("--max-queue", "Requests that may wait for a slot; more get 429 with Retry-After.", defaultValue: () => 64);
        var maxPrompt = Opt("--max-prompt-tokens", "Longest prompt accepted (400 beyond).", defaultValue: () => 2048);
        var maxTokens = Opt("--max-tokens-limit", "Largest max_tokens accepted (400 beyond).", defaultValue: () => 1024);
        var defaultMaxTokens = Opt("--default-max-tokens", "max_tokens of a request that gives none.", defaultValue: () => 256);
        var maxBody = Opt("--max-body-bytes", "Largest request body (413 beyond).", defaultValue: () => 1L << 20);
        var drain = Opt("--drain-seconds", "On SIGTERM, how long running requests may take to finish.", defaultValue: () => 60.0);
        var cmd = new Command("serve", "Serve models (plain, with a head, transfer or recovery) behind an OpenAI-compatible HTTP endpoint.")
            { name, variants, host, port, apiKey, logPrompts, maxBatch, maxQueue, maxPrompt, maxTokens, defaultMaxTokens, maxBody, drain };
        main.AddTo(cmd);
        var run = new ModelRunOptions(seedHelp: null, dtypeHelp: null); // --dtype is per variant; sampling seeds come with each request
        run.AddTo(cmd);
        DrainOnTermination.Add(cmd);
        cmd.SetAction(Action((p, _) =>
        {
            run.Read(p);
            var specs = new List<(string name, ParseResult parse)>();
            if (p.GetValue(main.Model) is { } dir) specs.Add((p.GetValue(name) ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), p));
            else if (p.GetValue(name) is not null) throw new ArgumentException("--name names the variant of --model; give --model too.");
            foreach (var v in p.GetValue(variants) ?? []) specs.Add(ParseVariant(v));
            if (specs.Count == 0) throw new ArgumentException("nothing to serve: give --model (and optionally --head etc.) or --variant NAME=OPTIONS.");

            var models = new Dictionary<(string, string?), (CausalLM model, TextTokenizer tok)>();
            var steerings = new List<Steering>();
            try
            {
                var served = new List<ServedVariant>();
                foreach (var (vname, vp) in specs)
                {
                    var o = vp == p ? main : VariantParser.Options;
                    var folder = vp.GetValue(o.Model) ?? throw new ArgumentException($"variant {vname}: --model is required.");
                    var dtype = vp.GetValue(o.Dtype);
                    var key = (Path.GetFullPath(folder), dtype);
                    if (!models.TryGetValue(key, out var loaded))
                        models[key] = loaded = (ModelCommands.LoadModel(folder, ModelCommands.ParseDtype(dtype)), TextTokenizer.Load(folder));
                    double alpha = vp.GetValue(o.Alpha);
                    var steer = Steering.Build(loaded.model, loaded.tok, o.Steering.Read(vp, alpha));
                    steerings.Add(steer);
                    var template = vp.GetValue(o.Template) is { } t ? loaded.tok.GetChatTemplate(t) : null;
                    served.Add(new ServedVariant(vname, loaded.model, loaded.tok, steer.Transform, template, alpha));
                    AnsiConsole.MarkupLine($"[grey]{Markup.Escape(vname)}: {Markup.Escape(folder)}, {Markup.Escape(steer.Description)}[/]");
                }
                using var engine = new ServingEngine(served, new EngineLimits
                {
                    MaxBatch = p.GetValue(maxBatch), MaxQueue = p.GetValue(maxQueue),
                    MaxPromptTokens = p.GetValue(maxPrompt), MaxNewTokens = p.GetValue(maxTokens),
                });
                var options = new ServerOptions
                {
                    Host = p.GetValue(host)!, Port = p.GetValue(port),
                    ApiKey = p.GetValue(apiKey) ?? NullIfEmpty(Environment.GetEnvironmentVariable("SUPERFICIAL_API_KEY")),
                    LogPrompts = p.GetValue(logPrompts), MaxBodyBytes = p.GetValue(maxBody), DefaultMaxTokens = p.GetValue(defaultMaxTokens),
                    DrainTimeout = TimeSpan.FromSeconds(p.GetValue(drain)),
                };
                var server = OpenAiServer.StartAsync(engine, options).GetAwaiter().GetResult();
                Console.WriteLine($"serving {string.Join(", ", served.Select(s => s.Name))} on {server.BaseAddress}v1 (OpenAI-compatible); SIGTERM or Ctrl+C drains and stops");
                server.WaitForShutdownAsync().GetAwaiter().GetResult();
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
                Console.WriteLine($"stopped after draining; {engine.TokensGenerated} tokens generated");
                return 0;
            }
            finally
            {
                foreach (var s in steerings) s.Dispose();
                foreach (var (m, _) in models.Values) m.Dispose();
            }
        }));
        return cmd;
    }

    static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    /// <summary>A command of the variant options alone, to parse --variant specs with.</summary>
    static class VariantParser
    {
        public static readonly VariantOptions Options = new();
        public static readonly Command Command = Make();
        static Command Make()
        {
            var c = new RootCommand("variant");
            Options.AddTo(c);
            return c;
        }
    }

    static (string name, ParseResult parse) ParseVariant(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0) throw new ArgumentException($"--variant \"{spec}\": expected NAME=OPTIONS, e.g. \"base+head=--model B --head H.safetensors\".");
        var vname = spec[..eq].Trim();
        var parse = VariantParser.Command.Parse(CommandLineParser.SplitCommandLine(spec[(eq + 1)..]).ToArray());
        if (parse.Errors.Count > 0)
            throw new ArgumentException($"--variant {vname}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        return (vname, parse);
    }
}
