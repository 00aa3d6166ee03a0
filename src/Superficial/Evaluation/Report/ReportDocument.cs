namespace Superficial.Evaluation.Report;

/// <summary>
/// The report's content, independent of its format: <see cref="ReportBuilder"/> decides what is shown,
/// the HTML and Markdown renderers only decide how. All text here is plain text; renderers escape it.
/// </summary>
public abstract record ReportBlock;

public sealed record Heading(int Level, string Text, string Anchor) : ReportBlock;

public sealed record Paragraph(string Text, bool Muted = false) : ReportBlock;

public sealed record BulletList(IReadOnlyList<string> Items) : ReportBlock;

public sealed record Table(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows, string? Caption = null) : ReportBlock;

/// <summary>A chart: the HTML embeds <paramref name="Png"/>; the Markdown links the file <paramref name="FileName"/> beside it.</summary>
public sealed record Figure(string FileName, byte[] Png, string Alt, string Caption) : ReportBlock;

/// <summary>One output of one variant, shown side by side with the others.</summary>
public sealed record ExampleOutput(string Variant, string Output, double Score);

/// <summary>A prompt as one or more variants read it (raw and chat variants read different texts).</summary>
public sealed record ExamplePrompt(string Label, string Text);

/// <summary>A collapsible example: the distinct prompts, then the variants' outputs side by side.</summary>
public sealed record ExampleBlock(string Title, IReadOnlyList<ExamplePrompt> Prompts, IReadOnlyList<ExampleOutput> Outputs, bool Open) : ReportBlock;
