using System.Text;

namespace Superficial.Evaluation.Tasks;

/// <summary>A CSV file read whole (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes).</summary>
internal sealed class CsvTable
{
    public string Path { get; }
    public IReadOnlyList<string> Header { get; }
    /// <summary>Data rows with the 1-based line each starts on (for error messages).</summary>
    public IReadOnlyList<(int Line, string[] Fields)> Rows { get; }

    CsvTable(string path, IReadOnlyList<string> header, IReadOnlyList<(int, string[])> rows) =>
        (Path, Header, Rows) = (path, header, rows);

    /// <summary>Reads a CSV file and checks that the named columns are present.</summary>
    public static CsvTable Read(string path, params string[] requiredColumns)
    {
        var records = Parse(File.ReadAllText(path), path);
        if (records.Count == 0) throw new TaskDataException($"{path}: empty CSV file, expected a header row.");
        var header = records[0].Fields;
        foreach (var c in requiredColumns)
            if (Array.IndexOf(header, c) < 0)
                throw new TaskDataException($"{path}: missing column \"{c}\" (header has: {string.Join(", ", header)}).");
        var rows = records.Skip(1).Where(r => !(r.Fields.Length == 1 && r.Fields[0].Length == 0)).ToList();
        foreach (var (line, fields) in rows)
            if (fields.Length != header.Length)
                throw new TaskDataException($"{path}:{line}: {fields.Length} fields, expected {header.Length} as in the header.");
        return new CsvTable(path, header, rows);
    }

    /// <summary>The value of a column in a row.</summary>
    public string Get(string[] row, string column) => row[Column(column)];

    int Column(string name)
    {
        for (int i = 0; i < Header.Count; i++) if (Header[i] == name) return i;
        throw new TaskDataException($"{Path}: no column \"{name}\".");
    }

    static List<(int Line, string[] Fields)> Parse(string text, string path)
    {
        var records = new List<(int, string[])>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool inQuotes = false, any = false;
        if (text.Length > 0 && text[0] == '\uFEFF') i = 1;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                    else inQuotes = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0: inQuotes = true; any = true; break;
                case ',': fields.Add(field.ToString()); field.Clear(); any = true; break;
                case '\r': break;
                case '\n':
                    fields.Add(field.ToString()); field.Clear();
                    records.Add((recordLine, fields.ToArray())); fields.Clear();
                    line++; recordLine = line; any = false;
                    break;
                default: field.Append(c); any = true; break;
            }
        }
        if (inQuotes) throw new TaskDataException($"{path}:{recordLine}: a quoted field is not closed before the end of the file.");
        if (any || field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            records.Add((recordLine, fields.ToArray()));
        }
        return records;
    }
}
