using System.Text.Json.Nodes;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>Bad config.json and checkpoints give errors that name the file, the field or tensor, and what was expected.</summary>
public class LoaderErrorTests
{
    static string Copy(TempDir tmp, string fixture)
    {
        var src = Path.Combine(TestPaths.Fixtures, "reference", "models", fixture);
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(tmp.Path, Path.GetFileName(f)));
        return tmp.Path;
    }

    static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var p = Path.Combine(dir, "config.json");
        var o = JsonNode.Parse(File.ReadAllText(p))!.AsObject();
        edit(o);
        File.WriteAllText(p, o.ToJsonString());
    }

    [Fact]
    public void MissingRequiredFieldIsNamed()
    {
        using var tmp = TestPaths.NewTempDir();
        var dir = Copy(tmp, "llama-gqa");
        EditConfig(dir, o => o.Remove("hidden_size"));
        var e = Assert.Throws<ModelConfigException>(() => CausalLM.Load(dir));
        Assert.Contains("hidden_size", e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void UnsupportedModelTypeAndRopeAreRefused()
    {
        using var tmp = TestPaths.NewTempDir();
        var dir = Copy(tmp, "llama-gqa");
        EditConfig(dir, o => o["model_type"] = "mamba");
        Assert.Contains("mamba", Assert.Throws<ModelConfigException>(() => CausalLM.Load(dir)).Message);
        EditConfig(dir, o => { o["model_type"] = "llama"; o["rope_scaling"] = new JsonObject { ["rope_type"] = "longrope", ["factor"] = 4.0 }; });
        Assert.Contains("longrope", Assert.Throws<ModelConfigException>(() => CausalLM.Load(dir)).Message);
        EditConfig(dir, o => { o.Remove("rope_scaling"); o["num_key_value_heads"] = 3; });
        Assert.Contains("num_key_value_heads", Assert.Throws<ModelConfigException>(() => CausalLM.Load(dir)).Message);
        EditConfig(dir, o => { o["num_key_value_heads"] = "two"; });
        Assert.Contains("\"num_key_value_heads\" should be an integer", Assert.Throws<ModelConfigException>(() => CausalLM.Load(dir)).Message);
    }

    [Fact]
    public void ShapeMismatchNamesTensorAndBothShapes()
    {
        using var tmp = TestPaths.NewTempDir();
        var dir = Copy(tmp, "llama-gqa");
        EditConfig(dir, o => o["intermediate_size"] = 100);
        var e = Assert.Throws<CheckpointMismatchException>(() => CausalLM.Load(dir));
        Assert.Contains("gate_proj.weight", e.Message);
        Assert.Contains("[112, 64]", e.Message);
        Assert.Contains("[100, 64]", e.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var tmp = TestPaths.NewTempDir();
        var dir = Copy(tmp, "llama-gqa");
        using (var st = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
        {
            var keep = st.Entries.Where(e => e.Name != "model.norm.weight").Select(e => KeyValuePair.Create(e.Name, st.Load(e.Name))).ToList();
            SafeTensorsWriter.Write(Path.Combine(dir, "model2.safetensors"), keep);
        }
        File.Move(Path.Combine(dir, "model2.safetensors"), Path.Combine(dir, "model.safetensors"), overwrite: true);
        var e = Assert.Throws<CheckpointMismatchException>(() => CausalLM.Load(dir));
        Assert.Contains("model.norm.weight", e.Message);
    }

    [Fact]
    public void ConfigRoundTripsThroughJson()
    {
        foreach (var name in new[] { "llama-gqa", "llama-tied-llama3rope", "llama-linear-bias-headdim", "mistral-window", "qwen2", "gpt2" })
        {
            var path = Path.Combine(TestPaths.Fixtures, "reference", "models", name, "config.json");
            var c = ModelConfig.Load(path);
            Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "roundtrip") with { EosTokenIds = c.EosTokenIds });
            using var m = CausalLM.Create(c, 1);
            Assert.Equal(c.ParameterCount(), m.parameters().Sum(p => p.numel()));
        }
    }
}
