namespace Superficial.Alignment;

/// <summary>
/// Which of N disjoint slices of the work this worker does (0-based index K). Given as --shard K/N, or
/// taken from a Slurm job array (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT)
/// or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with N from --shard-count), so one command line
/// runs unchanged as N workers.
/// </summary>
public readonly record struct ShardSpec(int Index, int Count)
{
    public static ShardSpec Single => new(0, 1);

    /// <summary>Work item <paramref name="item"/> belongs to this worker (items are dealt round-robin).</summary>
    public bool Owns(int item) => item % Count == Index;

    public override string ToString() => $"{Index}/{Count}";

    public static ShardSpec Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var k) || !int.TryParse(parts[1], out var n))
            throw new ArgumentException($"`Shard` \"{text}\": expected K/N, e.g. 0/4 for the first of four workers.");
        return Checked(k, n, "--shard");
    }

    static ShardSpec Checked(int k, int n, string source) =>
        n < 1 || k < 0 || k >= n
            ? throw new ArgumentException($"{source}: shard {k}/{n} is out of range (need 0 <= K < N, N >= 1).")
            : new ShardSpec(k, n);

    /// <summary>The flag when given, else the scheduler's environment, else a single worker.</summary>
    public static ShardSpec Resolve(string? flag, int? countFlag, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        if (!string.IsNullOrWhiteSpace(flag)) return Parse(flag);
        if (env("SLURM_ARRAY_TASK_ID") is { } sid && env("SLURM_ARRAY_TASK_COUNT") is { } scount)
        {
            int min = int.TryParse(env("SLURM_ARRAY_TASK_MIN"), out var m) ? m : 0;
            if (!int.TryParse(sid, out var id) || !int.TryParse(scount, out var count))
                throw new ArgumentException($"SLURM_ARRAY_TASK_ID={sid} / SLURM_ARRAY_TASK_COUNT={scount} are not integers.");
            return Checked(id - min, count, "Slurm job array");
        }
        if (env("JOB_COMPLETION_INDEX") is { } kid)
        {
            if (!int.TryParse(kid, out var id)) throw new ArgumentException($"JOB_COMPLETION_INDEX={kid} is not an integer.");
            if (countFlag is not int n)
                throw new ArgumentException("JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job): give the job's completions with `ShardCount` N.");
            return Checked(id, n, "Kubernetes Indexed Job");
        }
        return Single;
    }
}
