using static TorchSharp.torch;

namespace Superficial.Models;

/// <summary>
/// Devices to split every model across: by their free memory (auto: <see cref="DevicePlacement.Plan"/> with each
/// device's free bytes), or in equal shares when the list was given explicitly (<see cref="DevicePlacement.Balanced"/>).
/// </summary>
public sealed record DeviceMap(IReadOnlyList<string> Devices, bool ByFreeMemory)
{
    public DevicePlacement Plan(ModelConfig c, ScalarType dtype) => ByFreeMemory
        ? DevicePlacement.Plan(c, dtype, Devices.Select(d => new DeviceCapacity(d, DeviceMemory.FreeBytes(d))).ToArray())
        : DevicePlacement.Balanced(c, dtype, Devices);
}

/// <summary>A device and the bytes of weights it may hold.</summary>
public readonly record struct DeviceCapacity(string Device, long Bytes);

/// <summary>A model too large for the devices given, with the sizes involved.</summary>
public sealed class PlacementException(string message) : Exception(message);

/// <summary>
/// Where each part of a model lives when its layers are split across devices (as Hugging Face's device_map does):
/// the input embedding on <see cref="Devices"/>[<see cref="EmbeddingDevice"/>], decoder layer i on
/// <see cref="LayerDevices"/>[i], the final norm and the LM head on <see cref="HeadDevice"/> (a tied head stays with
/// the embedding). Hidden states move from one device to the next between layers.
/// </summary>
public sealed record DevicePlacement(IReadOnlyList<string> Devices, IReadOnlyList<int> LayerDevices, int EmbeddingDevice, int HeadDevice)
{
    /// <summary>Share of each device's capacity kept free for activations and the KV cache.</summary>
    public const double Headroom = 0.10;

    /// <summary>
    /// Fills the devices in order, as device_map="auto" does: the embedding first, then layers while they fit in a
    /// device's capacity less <paramref name="headroom"/>, then the next device; the untied head and final norm go
    /// after the last layer, on its device if they fit there. Pure: sizes come from the config and dtype alone.
    /// </summary>
    public static DevicePlacement Plan(ModelConfig c, ScalarType dtype, IReadOnlyList<DeviceCapacity> devices, double headroom = Headroom)
    {
        if (devices.Count == 0) throw new ArgumentException("no devices to place the model on.");
        var (embed, layer, head) = Sizes(c, dtype);
        var room = devices.Select(d => (long)(d.Bytes * (1 - headroom))).ToArray();
        var used = new long[devices.Count];
        int dev = 0;
        void Put(long bytes, string what)
        {
            while (dev < devices.Count && used[dev] + bytes > room[dev]) dev++;
            if (dev == devices.Count)
                throw new PlacementException(
                    $"the model does not fit on {string.Join(", ", devices.Select(d => $"{d.Device} ({d.Bytes / 1e9:0.##} GB)"))}: " +
                    $"{what} ({bytes / 1e9:0.###} GB) is left over; weights need {(embed + c.NumLayers * layer + head) / 1e9:0.##} GB " +
                    $"in {dtype} plus {headroom:P0} headroom per device. Add devices, use --dtype bfloat16, or free memory.");
            used[dev] += bytes;
        }
        Put(embed, "the input embedding");
        int embedDevice = dev;
        var layers = new int[c.NumLayers];
        for (int i = 0; i < c.NumLayers; i++) { Put(layer, $"layer {i}"); layers[i] = dev; }
        int headDevice = embedDevice;
        if (!c.TieWordEmbeddings) { Put(head, "the LM head and final norm"); headDevice = dev; }
        return new DevicePlacement(devices.Select(d => d.Device).ToArray(), layers, embedDevice, headDevice);
    }

    /// <summary>
    /// Equal shares for a list of devices whose free memory is not known (e.g. "cpu,cpu"): each may hold its share
    /// of the weights plus one layer, so the layers split about evenly (device_map="balanced").
    /// </summary>
    public static DevicePlacement Balanced(ModelConfig c, ScalarType dtype, IReadOnlyList<string> devices)
    {
        var (embed, layer, head) = Sizes(c, dtype);
        long total = embed + c.NumLayers * layer + (c.TieWordEmbeddings ? 0 : head);
        long share = total / devices.Count + layer;
        return Plan(c, dtype, devices.Select(d => new DeviceCapacity(d, share)).ToArray(), headroom: 0);
    }

    /// <summary>Bytes of the input embedding, one decoder layer, and the untied LM head with the final norm.</summary>
    public static (long Embedding, long Layer, long Head) Sizes(ModelConfig c, ScalarType dtype)
    {
        long elem = dtype switch { ScalarType.Float32 => 4, ScalarType.Float64 => 8, _ => 2 };
        long embed = (long)c.VocabSize * c.HiddenSize;
        long head = (c.TieWordEmbeddings ? 0 : embed) + c.HiddenSize;
        long layers = c.ParameterCount() - embed - head;
        return (embed * elem, layers / c.NumLayers * elem, head * elem);
    }

    /// <summary>How many layers each device holds, e.g. "cuda:0: embedding + layers 0-13; cuda:1: layers 14-31 + head".</summary>
    public string Describe()
    {
        var parts = new List<string>();
        for (int d = 0; d < Devices.Count; d++)
        {
            var mine = Enumerable.Range(0, LayerDevices.Count).Where(i => LayerDevices[i] == d).ToArray();
            var what = new List<string>();
            if (EmbeddingDevice == d) what.Add("embedding");
            if (mine.Length > 0) what.Add(mine.Length == 1 ? $"layer {mine[0]}" : $"layers {mine[0]}-{mine[^1]}");
            if (HeadDevice == d) what.Add("head");
            if (what.Count > 0) parts.Add($"{Devices[d]}: {string.Join(" + ", what)}");
        }
        return string.Join("; ", parts);
    }
}
