namespace Superficial.Tests;

/// <summary>Locates the workplace's shared folder (real tokenizer artifacts, data sets) and scratch folders.</summary>
public static class TestPaths
{
    /// <summary>The shared folder: $SUPERFICIAL_SHARED, else a "shared" folder beside or above the repository.</summary>
    public static string Shared
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("SUPERFICIAL_SHARED");
            if (!string.IsNullOrEmpty(env)) return Check(env);
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared");
                if (Directory.Exists(Path.Combine(candidate, "artifacts"))) return candidate;
            }
            if (Directory.Exists("/work/shared/artifacts")) return "/work/shared";
            throw new DirectoryNotFoundException(
                "The shared folder with artifacts/ and data/ was not found; set SUPERFICIAL_SHARED to its path.");
        }
    }

    public static string Artifacts => Path.Combine(Shared, "artifacts");

    /// <summary>tests/fixtures in the repository (reference outputs of independent implementations).</summary>
    public static string Fixtures
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "fixtures");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("tests/fixtures not found above " + AppContext.BaseDirectory);
        }
    }
    public static string Data => Path.Combine(Shared, "data");

    static string Check(string path) => Directory.Exists(path)
        ? path : throw new DirectoryNotFoundException($"SUPERFICIAL_SHARED={path} does not exist.");

    /// <summary>A fresh empty temporary folder, removed when disposed.</summary>
    public static TempDir NewTempDir(string tag = "t") => new(tag);
}

public sealed class TempDir : IDisposable
{
    public string Path { get; }
    public TempDir(string tag)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"superficial-{tag}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
