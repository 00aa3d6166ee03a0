using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Superficial.Text;

/// <summary>
/// A chat format rendered in C# exactly as its Hugging Face Jinja template renders with apply_chat_template(tokenize=False),
/// for system/user/assistant turns (tool calling and other roles are not supported). Encode the result with
/// addSpecialTokens: false, since the rendering already holds the BOS text where the template emits it.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>Chat formats this class renders; any is accepted by <see cref="Named"/> and --chat-template NAME.</summary>
    public static IReadOnlyList<string> KnownFamilies { get; } =
        ["llama2", "llama3", "llama3.1", "chatml", "mistral", "zephyr", "phi3", "gemma", "gemma3", "smollm3", "tulu", "falcon"];

    internal const string PickHint = "Pick a format with --chat-template NAME (one of: llama2, llama3, llama3.1, chatml, mistral, zephyr, phi3, gemma, gemma3, smollm3, tulu, falcon) or --chat-template FILE.jinja.";

    public string Family { get; }
    /// <summary>The text the template's bos_token / eos_token variables hold ("" when the tokenizer has none).</summary>
    public string BosToken { get; private set; }
    public string EosToken { get; private set; }
    /// <summary>ChatML: the system prompt the template writes when the conversation has none (Qwen2.5, SmolLM2…), else null.</summary>
    public string? DefaultSystemPrompt { get; private set; }
    /// <summary>The date templates print as "today" (strftime_now); defaults to the current local date.</summary>
    public DateTime Today { get; private set; } = DateTime.Now;

    // Variant switches found in the template source (see Recognize).
    bool _leadingBos, _bosIfUserOrSystemFirst, _eosAfterFinalAssistant, _spaceAfterEos, _eosAfterUser = true,
        _hasSystemRole = true, _phi3Inline, _eosWithoutGenerationPrompt, _falconLines;
    string _cutoffDate = "December 2023";
    string? _dateLiteral, _dateFormat;

    ChatTemplate(string family, string bos, string eos) { Family = family; BosToken = bos; EosToken = eos; }

    /// <summary>A family's canonical template; bos/eos texts come from <paramref name="tokenizer"/> when given, else the family's usual ones.</summary>
    public static ChatTemplate Named(string family, TextTokenizer? tokenizer = null)
    {
        if (!KnownFamilies.Contains(family))
            throw new UnrecognizedChatTemplateException($"Unknown chat template family '{family}'. {PickHint}");
        var (bos, eos) = SpecialTexts(family, tokenizer);
        // The canonical variants: Phi-3-mini-instruct's (EOS closes a finished conversation) and Llama-3.1's (fixed date).
        var t = new ChatTemplate(family, bos, eos);
        if (family == "phi3") t._eosWithoutGenerationPrompt = true;
        if (family == "llama3.1") t._dateLiteral = "26 Jul 2024";
        return t;
    }

    /// <summary>The same template with other bos/eos texts.</summary>
    public ChatTemplate WithSpecialTokens(string? bosToken, string? eosToken) => Copy(bosToken ?? "", eosToken ?? "", Today);

    /// <summary>The same template printing <paramref name="today"/> where it prints the current date.</summary>
    public ChatTemplate WithToday(DateTime today) => Copy(BosToken, EosToken, today);

    ChatTemplate Copy(string bos, string eos, DateTime today)
    {
        var c = (ChatTemplate)MemberwiseClone();
        c.BosToken = bos;
        c.EosToken = eos;
        c.Today = today;
        return c;
    }

    static (string Bos, string Eos) SpecialTexts(string family, TextTokenizer? tokenizer)
    {
        if (tokenizer != null) return (tokenizer.BosToken ?? "", tokenizer.EosToken ?? "");
        return family switch
        {
            "llama3" or "llama3.1" => ("<|begin_of_text|>", "<|eot_id|>"),
            "chatml" or "smollm3" => ("", "<|im_end|>"),
            "phi3" => ("<s>", "<|endoftext|>"),
            "gemma" or "gemma3" => ("<bos>", "<eos>"),
            "tulu" or "falcon" => ("<|endoftext|>", "<|endoftext|>"),   // OLMo 2's and Falcon's
            _ => ("<s>", "</s>"),
        };
    }

    /// <summary>
    /// Recognises a Jinja chat template from its distinctive markers and reads the variant details the rendering needs
    /// (leading BOS, default system prompt, date…). Throws <see cref="UnrecognizedChatTemplateException"/> for anything else.
    /// </summary>
    public static ChatTemplate Recognize(string jinjaSource, TextTokenizer? tokenizer = null)
    {
        var family = DetectFamily(jinjaSource);
        var (bos, eos) = SpecialTexts(family, tokenizer);
        return Configure(family, jinjaSource, bos, eos);
    }

    /// <summary>As <see cref="Recognize(string, TextTokenizer?)"/> with explicit bos/eos texts.</summary>
    public static ChatTemplate Recognize(string jinjaSource, string? bosToken, string? eosToken) =>
        Configure(DetectFamily(jinjaSource), jinjaSource, bosToken ?? "", eosToken ?? "");

    static readonly string[] Checked =
    [
        "llama3 (<|start_header_id|>)", "llama3.1 (<|start_header_id|> + Cutting Knowledge Date)", "llama2 ([INST] + <<SYS>>)",
        "mistral ([INST] without <<SYS>>)", "gemma / gemma3 (<start_of_turn>)", "smollm3 (<|im_start|> + Reasoning Mode)",
        "chatml (<|im_start|>)", "phi3 (<|end|> + <|user|> or <|assistant|>)", "tulu (OLMo 2: <|user|> + <|system|> + not loop.last)",
        "zephyr (<|user|> + eos_token)", "falcon (User: / Falcon:)",
    ];

    static UnrecognizedChatTemplateException Unrecognized(string why) =>
        new($"The chat template is not one this program can render exactly: {why}. Families checked: {string.Join("; ", Checked)}. {PickHint}");

    static string DetectFamily(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        bool Has(string m) => s.Contains(m, StringComparison.Ordinal);
        if (Has("<|start_header_id|>")) return Has("Cutting Knowledge Date") ? "llama3.1" : "llama3";
        if (Has("[INST]")) return Has("<<SYS>>") ? "llama2" : "mistral";
        if (Has("<start_of_turn>")) return Has("first_user_prefix") ? "gemma3" : "gemma";
        if (Has("<|im_start|>")) return Has("Reasoning Mode") ? "smollm3" : "chatml";
        if (Has("<|end|>") && (Has("<|user|>") || Has("<|assistant|>"))) return "phi3";
        if (Has("<|user|>") && Has("<|system|>") && Has("not loop.last")) return "tulu";
        if (Has("'Falcon:") && Has("User: ")) return "falcon";
        if (Has("<|user|>")) return Has("eos_token") ? "zephyr" : throw Unrecognized("it has <|user|> but neither <|end|> (phi3) nor eos_token (zephyr)");
        throw Unrecognized("none of the families' markers occur in it");
    }

    // Jinja fragments, whitespace-tolerant: a quoted "\n" may be an escape or a real newline.
    const string NL = @"(?:\\n|\n)";
    static bool Matches(string s, string pattern) => Regex.IsMatch(s, pattern, RegexOptions.Singleline | RegexOptions.CultureInvariant);
    static bool StartsWithBos(string s) => Matches(s,
        @"^\s*(?:\{%-?\s*if not add_generation_prompt is defined\s*-?%\}.*?\{%-?\s*endif\s*-?%\}\s*)?\{\{-?\s*bos_token\s*-?\}\}");

    static ChatTemplate Configure(string family, string s, string bos, string eos)
    {
        var t = new ChatTemplate(family, bos, eos);
        switch (family)
        {
            case "llama3":
                if (s.Contains("tools", StringComparison.Ordinal) || s.Contains("Today Date", StringComparison.Ordinal))
                    throw Unrecognized("a Llama-3 template with tools or a date header that is not the Llama-3.1 layout");
                break;
            case "llama3.1":
                if (Regex.Match(s, @"Cutting Knowledge Date: ([^\\""'\n]+)") is { Success: true } cut) t._cutoffDate = cut.Groups[1].Value;
                if (Regex.Match(s, @"set date_string = [""']([^""']+)[""']") is { Success: true } lit) t._dateLiteral = lit.Groups[1].Value;
                else if (Regex.Match(s, @"strftime_now\([""']([^""']+)[""']\)") is { Success: true } fmt) t._dateFormat = fmt.Groups[1].Value;
                else throw Unrecognized("a Llama-3.1-style template whose date is neither a date_string literal nor strftime_now(...)");
                break;
            case "mistral":
                if (s.Contains("system_message", StringComparison.Ordinal) || s.Contains("[AVAILABLE_TOOLS]", StringComparison.Ordinal))
                    throw Unrecognized("a Mistral template that places a system message or tools (only the v0.1/v0.2 [INST] layout is rendered)");
                t._spaceAfterEos = Matches(s, @"eos_token\s*\+\s*' '");
                break;
            case "chatml":
                if (Matches(s, @"<\|im_end\|>" + NL + @"<\|im_start\|>assistant"))
                    throw Unrecognized("a ChatML variant that opens the assistant turn inside the user turn");
                if (Matches(s, @"'" + NL + @"'\s*\+\s*'<\|im_start\|>'"))
                    throw Unrecognized("a ChatML variant that separates turns with a leading newline (DBRX style)");
                t._leadingBos = StartsWithBos(s);
                t._bosIfUserOrSystemFirst = Matches(s, @"messages\[0\]\['role'\] == 'user' or messages\[0\]\['role'\] == 'system'\s*-?%\}\s*\{\{-?\s*bos_token");
                t._eosAfterFinalAssistant = Matches(s, @"messages\[-1\]\['role'\] == 'assistant'\s*-?%\}\s*\{\{-?\s*eos_token");
                if (!t._leadingBos && !t._bosIfUserOrSystemFirst && s.Contains("bos_token", StringComparison.Ordinal))
                    throw Unrecognized("a ChatML variant that writes bos_token somewhere this program does not model");
                var sys = Regex.Match(s, @"'<\|im_start\|>system" + NL + @"([^'""{}+]+?)<\|im_end\|>", RegexOptions.Singleline);
                if (!sys.Success) sys = Regex.Match(s, @"set system_message = '([^']*)'");
                if (sys.Success) t.DefaultSystemPrompt = sys.Groups[1].Value.Replace("\\n", "\n");
                break;
            case "zephyr":
                var user = Regex.Match(s, @"'<\|user\|>" + NL + @"'\s*\+\s*message\['content'\]([^}]*)\}\}");
                if (!user.Success) throw Unrecognized("a <|user|> template whose user turn is not '<|user|>\\n' + message['content'] ...");
                t._eosAfterUser = user.Groups[1].Value.Contains("eos_token", StringComparison.Ordinal);
                t._hasSystemRole = s.Contains("<|system|>", StringComparison.Ordinal);
                break;
            case "phi3":
                t._phi3Inline = Matches(s, @"<\|end\|>'\s*\+\s*'" + NL + @"'\s*\+\s*'<\|assistant\|>") || Matches(s, @"<\|end\|>" + NL + @"<\|assistant\|>");
                t._leadingBos = StartsWithBos(s);
                t._eosWithoutGenerationPrompt = Matches(s, @"\{%-?\s*else\s*-?%\}\s*\{\{-?\s*eos_token\s*-?\}\}");
                break;
            case "smollm3":
                if (Regex.Match(s, @"strftime_now\([""']([^""']+)[""']\)") is { Success: true } f) t._dateFormat = f.Groups[1].Value;
                break;
            case "tulu":
                if (!Matches(s, @"'<\|assistant\|>" + NL + @"'\s*\+\s*message\['content'\]\s*\+\s*eos_token\s*\+\s*'" + NL + "'")
                    || !Matches(s, @"'<\|user\|>" + NL + @"'\s*\+\s*message\['content'\]\s*\+\s*'" + NL + "'"))
                    throw Unrecognized("a <|user|>/<|system|> template that is not the Tulu layout of OLMo 2");
                t._leadingBos = StartsWithBos(s);
                break;
            case "falcon":
                // Falcon-instruct: turns joined by "\n" ({% if not loop.first %}), or each turn on its own lines
                if (Matches(s, @"if not loop\.first")) t._falconLines = false;
                else if (Matches(s, @"'User: " + NL + @"'\s*\+\s*message\['content'\]") && Matches(s, @"'Falcon:" + NL + @"'\s*\+\s*message\['content'\]")) t._falconLines = true;
                else throw Unrecognized("a Falcon-style template that is neither of the two Falcon-instruct layouts");
                break;
        }
        return t;
    }

    /// <summary>
    /// The exact string the template renders for <paramref name="messages"/> (HF apply_chat_template(tokenize=False)).
    /// Throws <see cref="ChatTemplateException"/> where the template raises (e.g. roles that do not alternate).
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ChatTemplateException("A conversation needs at least one message.");
        foreach (var m in messages)
            if (m.Role is not ("system" or "user" or "assistant"))
                throw new ChatTemplateException($"Role '{m.Role}' is not supported; only system, user and assistant turns are rendered (no tool calling).");
        var sb = new StringBuilder();
        switch (Family)
        {
            case "llama2": Llama2(messages, sb); break;
            case "llama3": Llama3(messages, addGenerationPrompt, sb); break;
            case "llama3.1": Llama31(messages, addGenerationPrompt, sb); break;
            case "chatml": ChatMl(messages, addGenerationPrompt, sb); break;
            case "mistral": Mistral(messages, sb); break;
            case "zephyr": Zephyr(messages, addGenerationPrompt, sb); break;
            case "phi3": Phi3(messages, addGenerationPrompt, sb); break;
            case "gemma": Gemma(messages, addGenerationPrompt, sb, gemma3: false); break;
            case "gemma3": Gemma(messages, addGenerationPrompt, sb, gemma3: true); break;
            case "smollm3": SmolLm3(messages, addGenerationPrompt, sb); break;
            case "tulu": Tulu(messages, addGenerationPrompt, sb); break;
            case "falcon": Falcon(messages, addGenerationPrompt, sb); break;
            default: throw new InvalidOperationException($"No renderer for family '{Family}'.");
        }
        return sb.ToString();
    }

    const string AlternateError = "Conversation roles must alternate user/assistant/user/assistant/...";

    static (string? System, IReadOnlyList<ChatMessage> Turns) SplitSystem(IReadOnlyList<ChatMessage> m) =>
        m[0].Role == "system" ? (m[0].Content, m.Skip(1).ToList()) : (null, m);

    static void CheckAlternation(IReadOnlyList<ChatMessage> m, int i)
    {
        if ((m[i].Role == "user") != (i % 2 == 0)) throw new ChatTemplateException(AlternateError);
    }

    void Llama2(IReadOnlyList<ChatMessage> messages, StringBuilder sb)
    {
        var (system, rest) = SplitSystem(messages);
        for (int i = 0; i < rest.Count; i++)
        {
            CheckAlternation(rest, i);
            var content = i == 0 && system != null ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + rest[i].Content : rest[i].Content;
            if (rest[i].Role == "user") sb.Append(BosToken).Append("[INST] ").Append(PyText.Strip(content)).Append(" [/INST]");
            else if (rest[i].Role == "assistant") sb.Append(' ').Append(PyText.Strip(content)).Append(' ').Append(EosToken);
        }
    }

    static string Header(string role) => "<|start_header_id|>" + role + "<|end_header_id|>\n\n";

    void Llama3(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        for (int i = 0; i < messages.Count; i++)
        {
            if (i == 0) sb.Append(BosToken);
            sb.Append(Header(messages[i].Role)).Append(PyText.Strip(messages[i].Content)).Append("<|eot_id|>");
        }
        if (gen) sb.Append(Header("assistant"));
    }

    void Llama31(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        var (system, rest) = SplitSystem(messages);
        sb.Append(BosToken).Append(Header("system"));
        sb.Append("Cutting Knowledge Date: ").Append(_cutoffDate).Append('\n');
        sb.Append("Today Date: ").Append(_dateLiteral ?? StrfTime(_dateFormat!)).Append("\n\n");
        sb.Append(system == null ? "" : PyText.Strip(system)).Append("<|eot_id|>");
        foreach (var m in rest) sb.Append(Header(m.Role)).Append(PyText.Strip(m.Content)).Append("<|eot_id|>");
        if (gen) sb.Append(Header("assistant"));
    }

    void ChatMl(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        if (_leadingBos) sb.Append(BosToken);
        if (_bosIfUserOrSystemFirst && messages[0].Role is "user" or "system") sb.Append(BosToken);
        if (DefaultSystemPrompt != null && messages[0].Role != "system")
            sb.Append("<|im_start|>system\n").Append(DefaultSystemPrompt).Append("<|im_end|>\n");
        foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        if (gen) sb.Append("<|im_start|>assistant\n");
        else if (_eosAfterFinalAssistant && messages[^1].Role == "assistant") sb.Append(EosToken);
    }

    void Mistral(IReadOnlyList<ChatMessage> messages, StringBuilder sb)
    {
        sb.Append(BosToken);
        for (int i = 0; i < messages.Count; i++)
        {
            CheckAlternation(messages, i);
            var m = messages[i];
            if (m.Role == "user") sb.Append("[INST] ").Append(m.Content).Append(" [/INST]");
            else if (m.Role == "assistant") { sb.Append(m.Content).Append(EosToken); if (_spaceAfterEos) sb.Append(' '); }
            else throw new ChatTemplateException("Only user and assistant roles are supported!");
        }
    }

    void Zephyr(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (m.Role == "user") sb.Append("<|user|>\n").Append(m.Content).Append(_eosAfterUser ? EosToken : "").Append('\n');
            else if (m.Role == "system" && _hasSystemRole) sb.Append("<|system|>\n").Append(m.Content).Append(EosToken).Append('\n');
            else if (m.Role == "assistant") sb.Append("<|assistant|>\n").Append(m.Content).Append(EosToken).Append('\n');
            if (i == messages.Count - 1 && gen) sb.Append("<|assistant|>\n");
        }
    }

    void Phi3(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        if (_leadingBos) sb.Append(BosToken);
        if (_phi3Inline)
        {
            // Older Phi-3 layout: every user turn opens the assistant turn; system turns are dropped.
            foreach (var m in messages)
            {
                if (m.Role == "user") sb.Append("<|user|>\n").Append(m.Content).Append("<|end|>\n<|assistant|>\n");
                else if (m.Role == "assistant") sb.Append(m.Content).Append("<|end|>\n");
            }
            return;
        }
        foreach (var m in messages) sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("<|end|>\n");
        if (gen) sb.Append("<|assistant|>\n");
        else if (_eosWithoutGenerationPrompt) sb.Append(EosToken);
    }

    void Gemma(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb, bool gemma3)
    {
        sb.Append(BosToken);
        IReadOnlyList<ChatMessage> rest = messages;
        string prefix = "";
        if (messages[0].Role == "system")
        {
            if (!gemma3) throw new ChatTemplateException("System role not supported");
            prefix = messages[0].Content + "\n\n";
            rest = messages.Skip(1).ToList();
        }
        for (int i = 0; i < rest.Count; i++)
        {
            CheckAlternation(rest, i);
            var role = rest[i].Role == "assistant" ? "model" : rest[i].Role;
            sb.Append("<start_of_turn>").Append(role).Append('\n').Append(i == 0 ? prefix : "")
              .Append(PyText.Strip(rest[i].Content)).Append("<end_of_turn>\n");
        }
        if (gen) sb.Append("<start_of_turn>model\n");
    }

    /// <summary>Tulu, OLMo 2's SFT/DPO/Instruct format: &lt;|user|&gt;\n...\n&lt;|assistant|&gt;\n...EOS.</summary>
    void Tulu(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        if (_leadingBos) sb.Append(BosToken);
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            bool last = i == messages.Count - 1;
            if (m.Role == "assistant") sb.Append("<|assistant|>\n").Append(m.Content).Append(EosToken).Append(last ? "" : "\n");
            else sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append('\n');
            if (last && gen) sb.Append("<|assistant|>\n");
        }
    }

    /// <summary>Falcon-instruct: "User: ...", "Falcon: ...", in one of its two published layouts.</summary>
    void Falcon(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (_falconLines)
            {
                sb.Append(m.Role switch { "user" => "User: \n", "system" => "System: ", _ => "Falcon:\n" }).Append(m.Content).Append('\n');
                if (i == messages.Count - 1 && gen) sb.Append("Falcon:\n");
            }
            else
            {
                if (i > 0) sb.Append('\n');
                sb.Append(m.Role switch { "user" => "User: ", "system" => "System: ", _ => "Falcon: " }).Append(m.Content);
            }
        }
        if (!_falconLines && gen) sb.Append("\nFalcon:");
    }

    const string SmolThinkPrompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an assistant involves thoroughly exploring questions through a systematic thinking process before providing the final precise and accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, backtracking, and iteration to develop well-considered thinking process. Please structure your response into two main sections: Thought and Solution using the specified format: <think> Thought section </think> Solution section. In the Thought section, detail your reasoning process in steps. Each step should include detailed considerations such as analysing questions, summarizing relevant findings, brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting previous steps. In the Solution section, based on various attempts, explorations, and reflections from the Thought section, systematically present the final solution that you deem correct. The Solution section should be logical, accurate, and concise and detail necessary steps needed to reach the conclusion.";

    void SmolLm3(IReadOnlyList<ChatMessage> messages, bool gen, StringBuilder sb)
    {
        // SmolLM3's template with enable_thinking left at its default (true) and no tools.
        var mode = "/think";
        string? system = null, custom = null;
        sb.Append("<|im_start|>system\n");
        if (messages[0].Role == "system")
        {
            system = messages[0].Content;
            if (system.Contains("/no_think", StringComparison.Ordinal)) mode = "/no_think";
            else if (system.Contains("/think", StringComparison.Ordinal)) mode = "/think";
            custom = PyText.RStrip(system.Replace("/no_think", "").Replace("/think", ""));
        }
        if (system != null && system.Contains("/system_override", StringComparison.Ordinal))
            sb.Append(PyText.RStrip(custom!.Replace("/system_override", ""))).Append("<|im_end|>\n");
        else
        {
            sb.Append("## Metadata\n\n").Append("Knowledge Cutoff Date: June 2025\n")
              .Append("Today Date: ").Append(StrfTime(_dateFormat ?? "%d %B %Y")).Append('\n')
              .Append("Reasoning Mode: ").Append(mode).Append("\n\n").Append("## Custom Instructions\n\n");
            if (!string.IsNullOrEmpty(custom)) sb.Append(custom).Append("\n\n");
            else if (mode == "/think") sb.Append(SmolThinkPrompt).Append("\n\n");
            else sb.Append("You are a helpful AI assistant named SmolLM, trained by Hugging Face.\n\n");
        }
        foreach (var m in messages)
        {
            if (m.Role == "user") sb.Append("<|im_start|>user\n").Append(m.Content).Append("<|im_end|>\n");
            else if (m.Role == "assistant")
                sb.Append("<|im_start|>assistant\n").Append(mode == "/think" ? "" : "<think>\n\n</think>\n")
                  .Append(PyText.LStrip(m.Content, "\n")).Append("<|im_end|>\n");
        }
        if (gen) sb.Append("<|im_start|>assistant\n").Append(mode == "/think" ? "" : "<think>\n\n</think>\n");
    }

    /// <summary>Python's strftime for the directives chat templates use.</summary>
    string StrfTime(string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length) { sb.Append(format[i]); continue; }
            char d = format[++i];
            sb.Append(d switch
            {
                'd' => Today.ToString("dd", inv), 'm' => Today.ToString("MM", inv), 'Y' => Today.ToString("yyyy", inv),
                'y' => Today.ToString("yy", inv), 'b' => Today.ToString("MMM", inv), 'B' => Today.ToString("MMMM", inv),
                'a' => Today.ToString("ddd", inv), 'A' => Today.ToString("dddd", inv), 'H' => Today.ToString("HH", inv),
                'M' => Today.ToString("mm", inv), 'S' => Today.ToString("ss", inv), 'j' => Today.DayOfYear.ToString("000", inv), '%' => "%",
                _ => throw new ChatTemplateException($"strftime directive %{d} in the chat template is not supported."),
            });
        }
        return sb.ToString();
    }
}
