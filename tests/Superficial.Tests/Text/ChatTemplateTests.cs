using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>ChatTemplate beyond the jinja fixture: naming, recognition errors, template errors, special-token texts.</summary>
public class ChatTemplateTests
{
    static readonly ChatMessage[] OneTurn = [new("user", "Hi")];

    [Fact]
    public void Every_known_family_can_be_named_and_renders_a_user_turn()
    {
        foreach (var family in ChatTemplate.KnownFamilies)
        {
            var t = ChatTemplate.Named(family).WithToday(new DateTime(2025, 3, 14));
            Assert.Equal(family, t.Family);
            var text = t.Render(OneTurn);
            Assert.Contains("Hi", text);
        }
        Assert.Equal("<s>[INST] Hi [/INST]", ChatTemplate.Named("llama2").Render(OneTurn));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            ChatTemplate.Named("llama3").Render(OneTurn));
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", ChatTemplate.Named("chatml").Render(OneTurn));
        Assert.Equal("<s>[INST] Hi [/INST]", ChatTemplate.Named("mistral").Render(OneTurn));
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\n", ChatTemplate.Named("zephyr").Render(OneTurn));
        Assert.Equal("<|user|>\nHi<|end|>\n<|assistant|>\n", ChatTemplate.Named("phi3").Render(OneTurn));
        Assert.Equal("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", ChatTemplate.Named("gemma").Render(OneTurn));
    }

    [Fact]
    public void Special_token_texts_come_from_the_tokenizer()
    {
        var phi3 = TextFixtures.Tokenizer("phi3-mini");
        Assert.Equal("<|user|>\nHi<|end|>\n<|endoftext|>", ChatTemplate.Named("phi3", phi3).Render(OneTurn, addGenerationPrompt: false));
        // tokenizer.model: its control pieces are matched in raw text (the artifact tokenizer.json marks <s> "normalized",
        // so there HF, and this class, only find "▁<s>", never the "<s>" that follows "</s>").
        var llama = TextFixtures.Tokenizer("llama2-model");
        var rendered = ChatTemplate.Named("llama2", llama).Render([new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello"), new("user", "Bye")]);
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]", rendered);
        // Rendered text is encoded without adding BOS again: it already starts with "<s>".
        var ids = llama.Encode(rendered, addSpecialTokens: false);
        Assert.Equal(1, ids[0]);
        Assert.Equal(2, ids.Count(i => i == 1));
    }

    [Fact]
    public void Default_system_prompts_are_read_from_the_template()
    {
        using var doc = TextFixtures.Json(TextFixtures.Artifact("qwen2.5-instruct/tokenizer_config.json"));
        var qwen = ChatTemplate.Recognize(doc.RootElement.GetProperty("chat_template").GetString()!, null, "<|im_end|>");
        Assert.Equal("chatml", qwen.Family);
        Assert.Equal("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", qwen.DefaultSystemPrompt);
        Assert.StartsWith("<|im_start|>system\nYou are Qwen", qwen.Render(OneTurn));
        // A system turn replaces it.
        Assert.StartsWith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi", qwen.Render([new("system", "Be brief."), .. OneTurn]));
        // SmolLM2's template (ChatML with its own default system prompt, as published on its model card).
        const string smol2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        Assert.Equal("You are a helpful AI assistant named SmolLM, trained by Hugging Face", ChatTemplate.Recognize(smol2).DefaultSystemPrompt);
    }

    [Fact]
    public void Unrecognised_templates_say_what_was_checked_and_how_to_choose()
    {
        var e = Assert.Throws<UnrecognizedChatTemplateException>(() =>
            ChatTemplate.Recognize("{% for message in messages %}{{ message['role'] + ': ' + message['content'] }}{% endfor %}"));
        Assert.Contains("llama2", e.Message);
        Assert.Contains("chatml", e.Message);
        Assert.Contains("--chat-template NAME", e.Message);
        Assert.Contains("--chat-template FILE.jinja", e.Message);
        Assert.Throws<UnrecognizedChatTemplateException>(() => ChatTemplate.Named("vicuna"));
    }

    [Fact]
    public void A_template_file_can_be_named_instead_of_a_family()
    {
        using var d = TestPaths.NewTempDir("tpl");
        var path = d.File("my.jinja");
        File.WriteAllText(path, "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
        var t = TextFixtures.Tokenizer("gpt2").GetChatTemplate(path);
        Assert.Equal("chatml", t.Family);
    }

    [Fact]
    public void Conversations_the_template_rejects_throw_its_message()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Named("llama2").Render([new("user", "a"), new("user", "b")]));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Message);
        e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Named("gemma").Render([new("system", "s"), new("user", "u")]));
        Assert.Equal("System role not supported", e.Message);
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Named("chatml").Render([new("tool", "{}")]));
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Named("chatml").Render([]));
    }

    [Fact]
    public void Dated_templates_print_the_given_day()
    {
        var t = ChatTemplate.Named("smollm3").WithToday(new DateTime(2024, 1, 5));
        Assert.Contains("Today Date: 05 January 2024\n", t.Render(OneTurn));
        Assert.Contains("Today Date: 26 Jul 2024\n", ChatTemplate.Named("llama3.1").Render(OneTurn));
        var llama32 = "{{- bos_token }}{%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- endif %}{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}{{- \"Today Date: \" + date_string + \"\\n\\n\" }}";
        var t32 = ChatTemplate.Recognize(llama32, "<|begin_of_text|>", "<|eot_id|>").WithToday(new DateTime(2024, 9, 1));
        Assert.Equal("llama3.1", t32.Family);
        Assert.Contains("Today Date: 01 Sep 2024\n", t32.Render(OneTurn));
    }
}
