using System.Text.Json;
using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>
/// The weights of a model folder: model.safetensors, the shards listed in model.safetensors.index.json,
/// or else every *.safetensors file. Tensors are looked up by name across files; nothing is read until
/// asked for. Pickle checkpoints (*.bin, *.pt) are never loaded: unpickling runs arbitrary code.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string IndexName = "model.safetensors.index.json";
    static readonly string[] PickleExtensions = [".bin", ".pt", ".pth", ".ckpt", ".pkl"];

    readonly List<SafeTensorsFile> files;
    readonly Dictionary<string, SafeTensorsFile> owner;

    public string Folder { get; }
    public IReadOnlyCollection<string> Names => owner.Keys;
    public long TotalBytes => files.Sum(f => f.Entries.Sum(e => e.ByteLength));
    public IReadOnlyDictionary<string, string> Metadata => files.Count > 0 ? files[0].Metadata : new Dictionary<string, string>();

    Checkpoint(string folder, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner)
    {
        Folder = folder; this.files = files; this.owner = owner;
    }

    public static Checkpoint Open(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"model folder not found: {folder}");
        var index = Path.Combine(folder, IndexName);
        List<string> paths;
        Dictionary<string, string>? weightMap = null;
        if (File.Exists(index))
        {
            weightMap = ReadIndex(index);
            paths = weightMap.Values.Distinct().Order(StringComparer.Ordinal).Select(f => Path.Combine(folder, f)).ToList();
            foreach (var p in paths)
                if (!File.Exists(p)) throw new FileNotFoundException($"{index} lists shard \"{Path.GetFileName(p)}\", which is missing from {folder}.", p);
        }
        else if (File.Exists(Path.Combine(folder, "model.safetensors"))) paths = [Path.Combine(folder, "model.safetensors")];
        else paths = Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal).ToList();

        if (paths.Count == 0)
        {
            var pickles = Directory.GetFiles(folder).Where(f => PickleExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).ToList();
            if (pickles.Count > 0)
                throw new InvalidDataException(
                    $"{folder} has only pickle checkpoints ({string.Join(", ", pickles.Select(Path.GetFileName))}). Superficial never loads " +
                    "pickle files, because unpickling can run arbitrary code. Convert them to safetensors first, e.g. in Python: " +
                    "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True).");
            throw new FileNotFoundException($"{folder} has no *.safetensors weights.");
        }

        var files = new List<SafeTensorsFile>();
        var owner = new Dictionary<string, SafeTensorsFile>();
        try
        {
            foreach (var p in paths)
            {
                var f = SafeTensorsFile.Open(p);
                files.Add(f);
                foreach (var e in f.Entries)
                    if (!owner.TryAdd(e.Name, f))
                        throw new InvalidDataException($"{folder}: tensor \"{e.Name}\" appears in both {Path.GetFileName(owner[e.Name].Path)} and {Path.GetFileName(p)}.");
            }
            if (weightMap is not null)
                foreach (var (name, file) in weightMap)
                    if (!owner.TryGetValue(name, out var f) || Path.GetFileName(f.Path) != file)
                        throw new InvalidDataException($"{index}: tensor \"{name}\" is mapped to {file}, but that shard does not hold it.");
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return new Checkpoint(folder, files, owner);
    }

    static Dictionary<string, string> ReadIndex(string index)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{index}: missing \"weight_map\" object.");
            var result = new Dictionary<string, string>();
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{index}: weight_map[\"{p.Name}\"] must be a file name.");
                var file = p.Value.GetString()!;
                if (file != Path.GetFileName(file) || !file.EndsWith(".safetensors"))
                    throw new InvalidDataException($"{index}: weight_map[\"{p.Name}\"] = \"{file}\" is not a .safetensors file name in the same folder.");
                result[p.Name] = file;
            }
            return result;
        }
        catch (JsonException e) { throw new InvalidDataException($"{index}: not valid JSON ({e.Message})."); }
    }

    public bool Contains(string name) => owner.ContainsKey(name);
    SafeTensorsFile File_(string name) => owner.TryGetValue(name, out var f) ? f
        : throw new KeyNotFoundException($"{Folder}: no tensor \"{name}\" in the checkpoint.");
    public TensorEntry Entry(string name) => File_(name).Entry(name);
    public string FileOf(string name) => File_(name).Path;
    public Tensor Load(string name, ScalarType? dtype = null) => File_(name).Load(name, dtype);
    public void CopyInto(string name, Tensor destination) => File_(name).CopyInto(name, destination);
    /// <summary>The stored tensor read in place (see <see cref="SafeTensorsFile.TryMap"/>), or null where it cannot be.</summary>
    public Tensor? TryMap(string name) => File_(name).TryMap(name);

    public void Dispose()
    {
        foreach (var f in files) f.Dispose();
    }
}
