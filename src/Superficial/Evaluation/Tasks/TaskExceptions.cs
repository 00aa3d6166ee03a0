namespace Superficial.Evaluation.Tasks;

/// <summary>A task's data file is missing or malformed; the message names the file, line and field.</summary>
public sealed class TaskDataException(string message) : Exception(message);

/// <summary>A task was asked to score without the judge or labeller it cannot work without.</summary>
public sealed class ScorerMissingException(string message) : InvalidOperationException(message);
