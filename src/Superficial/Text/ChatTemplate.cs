using System.Text;
using System.Text.RegularExpressions;

namespace Superficial.Text;

/// <summary>One chat turn.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Raised when a chat template is missing or does not belong to a family Superficial renders exactly.</summary>
public sealed class UnrecognizedChatTemplateException(string message) : Exception(message);

/// <summary>
/// Chat formatting. Hugging Face stores chat templates as Jinja; rather than interpret arbitrary Jinja,
/// Superficial recognises the common families from their distinctive markers and renders each in C# exactly
/// as its template does (checked against jinja2 renderings of the real templates), and refuses anything
/// else rather than guess. Plain conversations only: tool-calling branches of templates are not rendered.
/// </summary>
public sealed class ChatTemplate
{
    public static readonly IReadOnlyList<string> KnownFamilies = ["llama2", "llama3", "chatml", "mistral", "zephyr", "phi3"];

    public string Family { get; }
    readonly string bos, eos;
    /// <summary>System prompt the template inserts when the conversation has none (Qwen2.5, some ChatML models).</summary>
    public string? DefaultSystem { get; }
    /// <summary>Whether the template writes the BOS token text at the start.</summary>
    public bool LeadingBos { get; }

    ChatTemplate(string family, string bos, string eos, string? defaultSystem = null, bool leadingBos = false)
    {
        Family = family; this.bos = bos; this.eos = eos; DefaultSystem = defaultSystem; LeadingBos = leadingBos;
    }

    public static ChatTemplate Named(string family, TextTokenizer? tokenizer = null)
    {
        var (bos, eos) = (tokenizer?.BosToken ?? "<s>", tokenizer?.EosToken ?? "</s>");
        return family switch
        {
            "llama2" or "llama2-chat" => new ChatTemplate("llama2", bos, eos),
            "llama3" or "llama3-instruct" => new ChatTemplate("llama3", tokenizer?.BosToken ?? "<|begin_of_text|>", eos, leadingBos: true),
            "chatml" => new ChatTemplate("chatml", bos, eos),
            "mistral" or "mistral-instruct" => new ChatTemplate("mistral", bos, eos, leadingBos: true),
            "zephyr" => new ChatTemplate("zephyr", bos, eos),
            "phi3" or "phi-3" => new ChatTemplate("phi3", bos, eos),
            _ => throw new UnrecognizedChatTemplateException(
                $"unknown chat template family \"{family}\" (known: {string.Join(", ", KnownFamilies)}; or give a .jinja file)."),
        };
    }

    /// <summary>Recognises the family of a Jinja chat template; throws when no family matches.</summary>
    public static ChatTemplate Recognize(string jinja, TextTokenizer? tokenizer = null)
    {
        var (bos, eos) = (tokenizer?.BosToken ?? "<s>", tokenizer?.EosToken ?? "</s>");
        bool leadingBos = Regex.IsMatch(jinja, @"^\s*\{\{-?\s*bos_token\s*-?\}\}|\{\{\s*bos_token\s*\}\}\{%\s*for", RegexOptions.Singleline)
                          || jinja.TrimStart().StartsWith("{{bos_token}}");
        if (jinja.Contains("<|start_header_id|>") && jinja.Contains("<|eot_id|>"))
            return new ChatTemplate("llama3", tokenizer?.BosToken ?? "<|begin_of_text|>", eos, leadingBos: true);
        if (jinja.Contains("<|im_start|>") && jinja.Contains("<|im_end|>"))
            return new ChatTemplate("chatml", bos, eos, DefaultSystemOf(jinja), leadingBos);
        if (jinja.Contains("[INST]") && jinja.Contains("<<SYS>>"))
            return new ChatTemplate("llama2", bos, eos);
        if (jinja.Contains("[INST]") && jinja.Contains("[/INST]"))
            return new ChatTemplate("mistral", bos, eos, leadingBos: true);
        if (jinja.Contains("<|user|>") && jinja.Contains("<|end|>"))
            return new ChatTemplate("phi3", bos, eos, leadingBos: leadingBos);
        if (jinja.Contains("<|user|>") && jinja.Contains("<|assistant|>") && jinja.Contains("eos_token"))
            return new ChatTemplate("zephyr", bos, eos);
        throw new UnrecognizedChatTemplateException(
            "the chat template does not belong to a family Superficial renders exactly (checked: Llama 3 header tokens, ChatML <|im_start|>, " +
            "Llama 2 [INST] <<SYS>>, Mistral [INST], Phi-3 <|user|>...<|end|>, Zephyr <|user|>...eos). Choose one with " +
            $"--chat-template NAME ({string.Join(", ", KnownFamilies)}) or --chat-template FILE.jinja holding a template of those families.");
    }

    /// <summary>The system text a ChatML template emits when the conversation has no system turn, if any.</summary>
    static string? DefaultSystemOf(string jinja)
    {
        var m = Regex.Match(jinja, @"<\|im_start\|>system\\n(?<text>[^'""{}<]*?)<\|im_end\|>");
        if (m.Success) return Regex.Unescape(m.Groups["text"].Value);
        m = Regex.Match(jinja, @"else\s*%\}\s*\{\{-?\s*'(?<text>You are [^']*)'\s*-?\}\}");
        return m.Success ? m.Groups["text"].Value : null;
    }

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        if (messages.Count == 0) throw new ArgumentException("a conversation needs at least one message.");
        foreach (var m in messages)
            if (m.Role is not ("system" or "user" or "assistant"))
                throw new ArgumentException($"role \"{m.Role}\" is not supported (system, user, assistant).");
        var sb = new StringBuilder();
        switch (Family)
        {
            case "llama2":
            {
                string? system = messages[0].Role == "system" ? messages[0].Content : null;
                var turns = system is null ? messages : messages.Skip(1).ToList();
                for (int i = 0; i < turns.Count; i++)
                {
                    var content = i == 0 && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{turns[i].Content}" : turns[i].Content;
                    if (turns[i].Role == "user") sb.Append(bos).Append("[INST] ").Append(content.Trim()).Append(" [/INST]");
                    else if (turns[i].Role == "assistant") sb.Append(' ').Append(content.Trim()).Append(' ').Append(eos);
                }
                break;
            }
            case "llama3":
                sb.Append(bos);
                foreach (var m in messages)
                    sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
                if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case "chatml":
                if (LeadingBos) sb.Append(bos);
                if (DefaultSystem is not null && messages[0].Role != "system") sb.Append("<|im_start|>system\n").Append(DefaultSystem).Append("<|im_end|>\n");
                foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
                break;
            case "mistral":
                if (messages.Any(m => m.Role == "system")) throw new ArgumentException("the Mistral template has no system role.");
                sb.Append(bos);
                foreach (var m in messages)
                    if (m.Role == "user") sb.Append("[INST] ").Append(m.Content).Append(" [/INST]");
                    else sb.Append(m.Content).Append(eos);
                break;
            case "zephyr":
                foreach (var m in messages) sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append(eos).Append('\n');
                if (addGenerationPrompt) sb.Append("<|assistant|>\n");
                break;
            case "phi3":
                if (LeadingBos) sb.Append(bos);
                foreach (var m in messages) sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("<|end|>\n");
                if (addGenerationPrompt) sb.Append("<|assistant|>\n");
                else sb.Append(eos);
                break;
        }
        return sb.ToString();
    }
}
