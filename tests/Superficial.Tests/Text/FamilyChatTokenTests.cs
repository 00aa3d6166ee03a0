using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>The chat formats of the new families, encoded by their real tokenizers (shared artifacts): the turn markers are single special tokens.</summary>
public class FamilyChatTokenTests
{
    static readonly ChatMessage[] Conversation = [new("user", "What is 2+2?"), new("assistant", "4"), new("user", "And 3+3?")];

    [Fact]
    public void Phi3TurnsEncodeToItsSpecialTokens()
    {
        var tok = TextTokenizer.Load(Path.Combine(TestPaths.Artifacts, "phi3-mini"));
        var template = tok.GetChatTemplate();
        Assert.Equal("phi3", template.Family);
        var ids = tok.Encode(template.Render(Conversation), addSpecialTokens: false);
        int user = tok.TokenToId("<|user|>")!.Value, end = tok.TokenToId("<|end|>")!.Value, assistant = tok.TokenToId("<|assistant|>")!.Value;
        Assert.Equal((32010, 32007, 32001), (user, end, assistant));
        Assert.Equal(2, ids.Count(i => i == user));
        Assert.Equal(3, ids.Count(i => i == end));
        Assert.Equal(2, ids.Count(i => i == assistant));
        Assert.Equal(assistant, ids[^1]);   // the generation prompt "<|assistant|>\n" ends it: the token strips the newline (rstrip)
        Assert.Contains(tok.TokenToId("<|end|>")!.Value, tok.StopIds);
    }

    [Fact]
    public void FalconInstructFormatRoundTripsThroughTheFalconTokenizer()
    {
        var tok = TextTokenizer.Load(Path.Combine(TestPaths.Artifacts, "falcon"));
        var template = ChatTemplate.Named("falcon", tok);
        var text = template.Render(Conversation);
        Assert.Equal("User: What is 2+2?\nFalcon: 4\nUser: And 3+3?\nFalcon:", text);
        var ids = tok.Encode(text, addSpecialTokens: false);
        Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void TuluAndGemmaFormatsByName()
    {
        var tulu = ChatTemplate.Named("tulu").Render(Conversation);
        Assert.Equal("<|user|>\nWhat is 2+2?\n<|assistant|>\n4<|endoftext|>\n<|user|>\nAnd 3+3?\n<|assistant|>\n", tulu);
        var gemma = ChatTemplate.Named("gemma").Render(Conversation);
        Assert.Equal("<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n", gemma);
    }
}
