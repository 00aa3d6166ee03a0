using System.Text.Json;
using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>
/// Every real chat template in the shared artifacts, rendered by jinja2 configured as transformers does
/// (tests/fixtures/text/render_templates.py → chat_templates.json), must be reproduced byte for byte, or refused.
/// </summary>
public class ChatTemplateFixtureTests
{
    static readonly Lazy<JsonDocument> Fixture = new(() => TextFixtures.Json(TextFixtures.FixturePath("text/chat_templates.json")));

    public static IEnumerable<object[]> TemplateIds() =>
        Fixture.Value.RootElement.GetProperty("templates").EnumerateArray().Select(t => new object[] { t.GetProperty("id").GetString()! });

    static string SourceOf(JsonElement t)
    {
        if (t.TryGetProperty("source", out var inline)) return inline.GetString()!;
        var file = TextFixtures.Artifact(t.GetProperty("file").GetString()!);
        if (file.EndsWith(".jinja")) return File.ReadAllText(file);
        using var doc = TextFixtures.Json(file);
        if (t.TryGetProperty("index", out var index)) return doc.RootElement[index.GetInt32()].GetProperty("template").GetString()!;
        return doc.RootElement.GetProperty("chat_template").GetString()!;
    }

    [Theory]
    [MemberData(nameof(TemplateIds))]
    public void Renders_exactly_like_jinja_or_refuses(string id)
    {
        var t = Fixture.Value.RootElement.GetProperty("templates").EnumerateArray().Single(x => x.GetProperty("id").GetString() == id);
        var source = SourceOf(t);
        var family = t.GetProperty("family").ValueKind == JsonValueKind.Null ? null : t.GetProperty("family").GetString();
        if (family == null)
        {
            var e = Assert.Throws<UnrecognizedChatTemplateException>(() => ChatTemplate.Recognize(source, "<s>", "</s>"));
            Assert.Contains("--chat-template", e.Message);
            return;
        }
        var bos = t.GetProperty("bos_token").GetString();
        var eos = t.GetProperty("eos_token").GetString();
        var template = ChatTemplate.Recognize(source, bos, eos);
        Assert.Equal(family, template.Family);
        if (t.TryGetProperty("today", out var today)) template = template.WithToday(DateTime.Parse(today.GetString()!, System.Globalization.CultureInfo.InvariantCulture));

        var conversations = Fixture.Value.RootElement.GetProperty("conversations");
        var failures = new List<string>();
        foreach (var c in t.GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("conversation").GetString()!;
            var messages = conversations.GetProperty(name).EnumerateArray()
                .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
            bool gen = c.GetProperty("add_generation_prompt").GetBoolean();
            string? actual = null;
            try { actual = template.Render(messages, gen); }
            catch (ChatTemplateException e)
            {
                if (!c.TryGetProperty("error", out var err)) failures.Add($"{name} gen={gen}: threw '{e.Message}' but jinja rendered");
                else if (e.Message != err.GetString()) failures.Add($"{name} gen={gen}: error '{e.Message}' != jinja's '{err.GetString()}'");
                continue;
            }
            if (c.TryGetProperty("error", out var expectedError)) failures.Add($"{name} gen={gen}: rendered but jinja raised '{expectedError.GetString()}'");
            else if (actual != c.GetProperty("expected").GetString())
                failures.Add($"{name} gen={gen}:\n  expected {JsonSerializer.Serialize(c.GetProperty("expected").GetString())}\n  actual   {JsonSerializer.Serialize(actual)}");
        }
        Assert.True(failures.Count == 0, $"{id} ({family}): {failures.Count} mismatches\n" + string.Join("\n", failures));
    }

    [Fact]
    public void Fixture_covers_every_supported_family()
    {
        var families = Fixture.Value.RootElement.GetProperty("templates").EnumerateArray()
            .Select(t => t.GetProperty("family")).Where(f => f.ValueKind == JsonValueKind.String).Select(f => f.GetString()).ToHashSet();
        foreach (var f in ChatTemplate.KnownFamilies) Assert.Contains(f, families);
    }
}
