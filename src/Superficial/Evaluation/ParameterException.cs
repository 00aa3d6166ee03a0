using System.Text.RegularExpressions;

namespace Superficial.Evaluation;

/// <summary>
/// A bad argument to a library call, naming the parameter(s) in backquotes (`Name`) in its text, the convention of
/// the library's messages (the parameter itself is <see cref="ArgumentException.ParamName"/>). A caller that set
/// them from its own options (the CLI's flags) shows them its way with <see cref="Render"/>.
/// </summary>
public sealed class ParameterException(string parameter, string text) : ArgumentException(text, parameter)
{
    public override string Message => text;

    /// <summary>The text with every `Name` replaced by <paramref name="name"/>(Name).</summary>
    public string Render(Func<string, string> name) => Regex.Replace(text, @"`(\w+)`", m => name(m.Groups[1].Value));
}
