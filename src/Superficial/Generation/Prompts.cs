namespace Superficial.Generation;

/// <summary>One example of a task: the data a prompt is built from and what a good answer is.</summary>
/// <param name="Id">Stable identifier within the task (e.g. "test-17", "hate_asian-812").</param>
/// <param name="Input">The example's main text (question, instruction, statement list).</param>
/// <param name="Target">Reference answer where the task has one (GSM8K's number, TruthfulQA's best answer).</param>
/// <param name="Choices">Answer options of a multiple-choice task.</param>
/// <param name="CorrectChoices">Indices into <paramref name="Choices"/> that are correct.</param>
/// <param name="Fields">Anything else the scorer or the report needs (e.g. "group" for ToxiGen, "harmful" for organism requests).</param>
public sealed record TaskExample(
    string Id,
    string Input,
    string? Target = null,
    IReadOnlyList<string>? Choices = null,
    IReadOnlyList<int>? CorrectChoices = null,
    IReadOnlyDictionary<string, string>? Fields = null);

/// <summary>
/// The two forms of one prompt. A base model reads <see cref="Raw"/>; a chat model reads its chat
/// template applied to one user turn holding <see cref="User"/>, followed by <see cref="ResponsePrefix"/>
/// (joined with a space unless the rendered template already ends in whitespace), as the reference does.
/// </summary>
public sealed record PromptSpec(string Raw, string User, string? ResponsePrefix = null);
