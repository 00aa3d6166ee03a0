namespace Superficial.Text;

/// <summary>One turn of a conversation; Role is "system", "user" or "assistant".</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>The template cannot say which chat format it is; the message lists the families checked and how to pick one.</summary>
public class UnrecognizedChatTemplateException : Exception
{
    public UnrecognizedChatTemplateException(string message) : base(message) { }
}

/// <summary>A conversation the chat template itself rejects (its raise_exception), e.g. roles that do not alternate.</summary>
public class ChatTemplateException : ArgumentException
{
    public ChatTemplateException(string message) : base(message) { }
}
