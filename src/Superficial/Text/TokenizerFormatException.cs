namespace Superficial.Text;

/// <summary>A tokenizer file is missing, malformed or refers to something it does not define; the message names the file and field.</summary>
public sealed class TokenizerFormatException : Exception
{
    public TokenizerFormatException(string message, Exception? inner = null) : base(message, inner) { }
}
