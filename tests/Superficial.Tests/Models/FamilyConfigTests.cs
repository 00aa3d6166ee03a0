using System.Text.Json.Nodes;
using Superficial.Models;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>Family switches read from config.json: transformers' defaults for absent keys, refusals that name the key, round trips.</summary>
public class FamilyConfigTests
{
    static JsonObject Base(string type) => new()
    {
        ["model_type"] = type, ["vocab_size"] = 100, ["hidden_size"] = 32, ["num_hidden_layers"] = 4,
        ["num_attention_heads"] = 4, ["intermediate_size"] = 48,
    };

    static ModelConfig Parse(JsonObject o) => ModelConfig.Parse(o, "config.json");

    [Fact]
    public void Gemma2TakesTransformersDefaultsAndExplicitNullSwitchesACapOff()
    {
        var c = Parse(Base("gemma2"));
        Assert.Equal(50.0, c.AttnLogitSoftcap);
        Assert.Equal(30.0, c.FinalLogitSoftcap);
        Assert.Equal(256.0, c.QueryPreAttnScalar);
        Assert.Equal(256, c.HeadDim);
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Equal([0, 2], c.SlidingLayers);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);
        var o = Base("gemma2");
        o["final_logit_softcapping"] = null;
        o["attn_logit_softcapping"] = null;
        var off = Parse(o);
        Assert.Null(off.FinalLogitSoftcap);
        Assert.Null(off.AttnLogitSoftcap);
    }

    [Fact]
    public void GemmaReadsHiddenActivationNotHiddenAct()
    {
        var o = Base("gemma");
        o["hidden_act"] = "gelu";   // transformers ignores it for Gemma
        Assert.Equal("gelu_pytorch_tanh", Parse(o).HiddenAct);
        o["hidden_activation"] = "gelu";
        Assert.Equal("gelu", Parse(o).HiddenAct);
        o["hidden_activation"] = "relu";
        Assert.Contains("hidden_activation", Assert.Throws<ModelConfigException>(() => Parse(o)).Message);
    }

    [Fact]
    public void Qwen2WindowAppliesFromMaxWindowLayersAndLayerTypesOverride()
    {
        var o = Base("qwen2");
        o["use_sliding_window"] = true;
        o["sliding_window"] = 16;
        o["max_window_layers"] = 3;
        var c = Parse(o);
        Assert.Equal([3], c.SlidingLayers);
        Assert.Null(c.WindowOf(0));
        Assert.Equal(16, c.WindowOf(3));
        Assert.Equal([3], Parse(c.ToJson()).SlidingLayers);
        o["layer_types"] = new JsonArray("sliding_attention", "full_attention", "sliding_attention", "full_attention");
        Assert.Equal([0, 2], Parse(o).SlidingLayers);
        o["layer_types"] = new JsonArray("chunked_attention", "full_attention", "full_attention", "full_attention");
        Assert.Contains("layer_types", Assert.Throws<ModelConfigException>(() => Parse(o)).Message);
    }

    [Theory]
    [InlineData("yarn", "original_max_position_embeddings")]
    [InlineData("yarn", "mscale")]
    [InlineData("dynamic", "original_max_position_embeddings")]
    public void RopeFieldsThatCannotBeHonouredAreNamed(string type, string field)
    {
        var o = Base("llama");
        o["max_position_embeddings"] = 64;
        o["rope_scaling"] = new JsonObject { ["rope_type"] = type, ["factor"] = 2.0, [field] = 128 };
        Assert.Contains(field, Assert.Throws<ModelConfigException>(() => Parse(o)).Message);
    }

    [Fact]
    public void LongropeNeedsOneFactorPerFrequencyAndOnlyPhi3HasIt()
    {
        var o = Base("phi3");
        o["original_max_position_embeddings"] = 16;
        o["rope_scaling"] = new JsonObject { ["type"] = "longrope", ["short_factor"] = new JsonArray(1.0, 1.0), ["long_factor"] = new JsonArray(1.0, 1.0) };
        Assert.Contains("head_dim / 2 = 4", Assert.Throws<ModelConfigException>(() => Parse(o)).Message);
        var l = Base("llama");
        l["rope_scaling"] = new JsonObject { ["type"] = "longrope", ["short_factor"] = new JsonArray(1.0), ["long_factor"] = new JsonArray(1.0) };
        Assert.Contains("longrope", Assert.Throws<ModelConfigException>(() => Parse(l)).Message);
    }

    [Theory]
    [InlineData("new_decoder_architecture", false)]
    [InlineData("alibi", true)]
    [InlineData("parallel_attn", false)]
    public void FalconLayoutsOtherThanTheNewDecoderArchitectureAreRefusedByName(string field, bool value)
    {
        var o = new JsonObject
        {
            ["model_type"] = "falcon", ["vocab_size"] = 100, ["hidden_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_kv_heads"] = 2, ["new_decoder_architecture"] = true,
        };
        Assert.Equal(2, Parse(o).ParallelNorms);
        o[field] = value;
        Assert.Contains($"\"{field}\"", Assert.Throws<ModelConfigException>(() => Parse(o)).Message);
    }

    [Theory]
    [InlineData("gemma")]
    [InlineData("gemma2")]
    [InlineData("olmo2")]
    [InlineData("phi3-window")]
    [InlineData("phi3-longrope")]
    [InlineData("qwen2-window")]
    [InlineData("llama-dynamic")]
    [InlineData("llama-yarn")]
    [InlineData("falcon-new-arch")]
    public void ModelsSavedHereLoadBackWithTheSameArchitectureAndOutputs(string name)
    {
        using var model = CausalLM.Load(Path.Combine(TestPaths.Fixtures, "reference", "models", name));
        using var tmp = TestPaths.NewTempDir("family-save");
        model.SaveHf(tmp.Path);
        using var back = CausalLM.Load(tmp.Path);
        Assert.Equal(model.Config.Features(), back.Config.Features());
        Assert.Equal(model.Config.ParameterCount(), back.Config.ParameterCount());
        Assert.Equal(model.named_parameters().Sum(p => p.parameter.numel()), model.Config.ParameterCount());
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 5, 9, 14, 3, 7, 30, 31, 2, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 }, [1, 18]);
        Assert.True(model.Logits(model.Forward(ids)).equal(back.Logits(back.Forward(ids))).all().item<bool>());
    }

    [Fact]
    public void CreatedGemmaModelsStartWithIdentityNorms()
    {
        // Gemma's norms scale by 1 + w: a fresh model has w = 0, so its final norm is the plain RMS normalisation
        using var model = CausalLM.Create(Parse(Base("gemma")), 1);
        using var noGrad = no_grad();
        var norm = model.named_parameters().Single(p => p.name == "model.norm.weight").parameter;
        Assert.Equal(0.0f, norm.abs().max().item<float>());
    }
}
