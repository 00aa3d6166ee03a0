using System.Runtime.InteropServices;

namespace Superficial.IO;

/// <summary>
/// Writes files so that a crash, a kill or a power cut never leaves a half-written file under the real
/// name: everything goes to a temporary file in the same folder, which is flushed to disk (fsync), then
/// renamed over the target, and the folder itself is flushed so the rename is durable. Every atomic write
/// of the project goes through here.
/// </summary>
public static class AtomicFile
{
    /// <summary>Runs <paramref name="write"/> on a temporary path next to <paramref name="path"/>, then renames it into place.</summary>
    public static void Write(string path, Action<string> write) => Publish(path, write, overwrite: true);

    public static void WriteAllText(string path, string text) => Write(path, t => File.WriteAllText(t, text));

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, t => File.WriteAllBytes(t, bytes));

    /// <summary>
    /// Creates <paramref name="path"/> with the given content only if it does not exist yet, atomically: of
    /// several processes racing to create it, exactly one succeeds and the others get false (the file is
    /// then whole, written by the winner). The content is complete before the name appears.
    /// </summary>
    public static bool TryCreateExclusive(string path, string text)
    {
        try
        {
            Publish(path, t => File.WriteAllText(t, text), overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
    }

    static void Publish(string path, Action<string> write, bool overwrite)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}"[..^24];
        try
        {
            write(tmp);
            FlushFile(tmp);
            if (overwrite) File.Move(tmp, full, overwrite: true);
            else LinkExclusive(tmp, full);
            FlushDirectory(dir);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Gives the complete temporary file the target name only if that name is free, atomically: link(2) fails
    /// with EEXIST when the target exists (File.Move without overwrite checks, then renames: a race).
    /// </summary>
    static void LinkExclusive(string tmp, string full)
    {
        if (OperatingSystem.IsWindows()) { File.Move(tmp, full, overwrite: false); return; }
        if (Native.link(tmp, full) == 0) return;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == 17 /* EEXIST */) throw new IOException($"{full} already exists.");
        // File systems without hard links: fall back to the checked rename.
        File.Move(tmp, full, overwrite: false);
    }

    /// <summary>
    /// Replaces the folder <paramref name="dir"/> as a whole: <paramref name="write"/> fills a fresh "DIR.new",
    /// which is flushed to disk, then the current folder is moved to "DIR.old", "DIR.new" to "DIR", and "DIR.old"
    /// is deleted. A kill at any moment leaves a whole folder under one of the three names; the reader decides
    /// which one to trust (the head trainer's checkpoint recovery does).
    /// </summary>
    public static void ReplaceDirectory(string dir, Action<string> write)
    {
        var fresh = dir + ".new";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        Directory.CreateDirectory(fresh);
        write(fresh);
        FlushTree(fresh);
        var old = dir + ".old";
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(fresh, dir);
        FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(dir))!);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    /// <summary>Forces a file's data to disk (fsync).</summary>
    public static void FlushFile(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Forces a folder's entries (renames, new files) to disk; a no-op where folders cannot be opened (Windows).</summary>
    public static void FlushDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Native.open(dir, Native.O_RDONLY); // a folder opens read-only like a file on Linux and macOS
        if (fd < 0) return;
        try { Native.fsync(fd); }
        finally { Native.close(fd); }
    }

    /// <summary>Writes every file under a freshly written folder to disk, then the folder, then its parent.</summary>
    public static void FlushTree(string dir)
    {
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)) FlushFile(f);
        FlushDirectory(dir);
        if (Path.GetDirectoryName(Path.GetFullPath(dir)) is { } parent) FlushDirectory(parent);
    }

    static class Native
    {
        public const int O_RDONLY = 0;
        [DllImport("libc", SetLastError = true)] public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
        [DllImport("libc", SetLastError = true)] public static extern int fsync(int fd);
        [DllImport("libc", SetLastError = true)] public static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string from, [MarshalAs(UnmanagedType.LPUTF8Str)] string to);
        [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
    }
}
