using System.Text.RegularExpressions;

namespace Superficial.Evaluation;

/// <summary>
/// A bad argument to a library call, naming the parameter(s) as {Name} in its text (the parameter itself is
/// <see cref="ArgumentException.ParamName"/>). <see cref="Message"/> shows the names as they are; a caller that
/// set them from its own options (the CLI's flags) shows them its way with <see cref="Render"/>.
/// </summary>
public sealed class ParameterException(string parameter, string text) : ArgumentException(text, parameter)
{
    public override string Message => Render(n => n);

    /// <summary>The text with every {Name} passed through <paramref name="name"/>.</summary>
    public string Render(Func<string, string> name) => Regex.Replace(text, @"\{(\w+)\}", m => name(m.Groups[1].Value));
}
