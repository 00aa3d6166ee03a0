namespace Superficial.Evaluation;

/// <summary>
/// A bad argument to a library call, naming the parameter(s) in backquotes (`Name`) in its text, the convention of
/// the library's messages (the parameter itself is <see cref="ArgumentException.ParamName"/>). The CLI shows each
/// `Name` as the flag that sets it.
/// </summary>
public sealed class ParameterException(string parameter, string text) : ArgumentException(text, parameter)
{
    public override string Message => text;
}
