namespace Superficial.Evaluation.Tasks;

/// <summary>
/// The data folder of the real benchmarks (the reference implementation's advbench/, gsm/, toxigen/, truthfulqa/):
/// the check a benchmark declaration runs when its task is built, and its files, each with a clear error if missing.
/// </summary>
public static class BenchmarkData
{
    /// <summary>Refuses a data folder that does not exist (before any example is read).</summary>
    public static void CheckFolder(TaskOptions options)
    {
        if (!Directory.Exists(options.DataDir))
            throw new TaskDataException($"Data folder not found: {options.DataDir}. It should hold advbench/, gsm/, toxigen/ and truthfulqa/.");
    }

    /// <summary>Path of a file under the data folder, with a clear error naming the task if it is missing.</summary>
    public static string File(TaskOptions options, string task, params string[] parts)
    {
        var path = Path.Combine([options.DataDir, .. parts]);
        if (!System.IO.File.Exists(path))
            throw new TaskDataException($"{task}: data file not found: {path}. The data folder should be the one holding {parts[0]}/.");
        return path;
    }
}
