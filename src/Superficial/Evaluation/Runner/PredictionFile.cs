using System.Text;
using System.Text.Json;

namespace Superficial.Evaluation.Runner;

/// <summary>
/// A predictions/&lt;task&gt;/&lt;variant&gt;.jsonl file: one <see cref="PredictionRecord"/> per line, appended a batch
/// at a time and flushed to disk, so an interrupted run loses at most the batch in flight.
/// </summary>
public static class PredictionFile
{
    /// <summary>The file of one (task, variant) under a run's output folder.</summary>
    public static string PathFor(string outputDir, string task, string variant) =>
        Path.Combine(outputDir, "predictions", task, variant + ".jsonl");

    /// <summary>
    /// Reads a prediction file (empty if it does not exist). A last line that is torn (no final newline, or
    /// not valid JSON) is an interrupted write and is left out; with <paramref name="repair"/> it is also cut
    /// from the file so appends continue after the last whole record. Any other bad line is an error.
    /// </summary>
    public static IReadOnlyList<PredictionRecord> Read(string path, bool repair = false)
    {
        if (!File.Exists(path)) return [];
        var bytes = File.ReadAllBytes(path);
        var records = new List<PredictionRecord>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        long goodEnd = 0;
        var start = 0;
        var lineNo = 0;
        while (start < bytes.Length)
        {
            lineNo++;
            var nl = Array.IndexOf(bytes, (byte)'\n', start);
            var isLast = nl < 0 || nl == bytes.Length - 1;
            if (nl < 0) break; // torn: the write of this line never reached its newline
            var line = Encoding.UTF8.GetString(bytes, start, nl - start).TrimEnd('\r');
            PredictionRecord? record = null;
            if (line.Length > 0)
            {
                try { record = PredictionRecord.FromJsonLine(line); }
                catch (JsonException e)
                {
                    if (isLast) break;
                    throw new EvalRunException($"{path}: line {lineNo} is not a valid prediction record ({e.Message}). " +
                        "Only a torn last line is discarded automatically; fix or remove this line, or delete the file to re-run it.", e);
                }
                if (!ids.Add(record.Id))
                    throw new EvalRunException($"{path}: line {lineNo} repeats example id '{record.Id}'; each example must be recorded once.");
                records.Add(record);
            }
            start = nl + 1;
            goodEnd = start;
        }
        if (repair && goodEnd < bytes.Length)
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
            fs.SetLength(goodEnd);
            fs.Flush(flushToDisk: true);
        }
        return records;
    }

    /// <summary>
    /// Records which variant a prediction file belongs to (in FILE.variant.json beside it) and refuses to
    /// continue a file written by a different variant under the same name (another head, model or alpha).
    /// </summary>
    public static void CheckIdentity(string path, string variantName, string identity)
    {
        var idPath = Path.ChangeExtension(path, ".variant.json");
        if (File.Exists(idPath))
        {
            var previous = File.ReadAllText(idPath);
            if (previous != identity)
                throw new EvalRunException(
                    $"{path} holds predictions of a different '{variantName}' than this run's (see {idPath}):\n  was: {previous}\n  now: {identity}\n" +
                    "Use another output folder, or delete that file (and its .variant.json) to evaluate this variant afresh.");
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        IO.AtomicFile.WriteAllText(idPath, identity);
    }

    /// <summary>Appends whole records as one write and flushes them to disk.</summary>
    public static void Append(string path, IEnumerable<PredictionRecord> records)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var text = new StringBuilder();
        foreach (var r in records) text.Append(r.ToJsonLine()).Append('\n');
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        using var fs = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
    }
}
