using Superficial.Generation;
using Superficial.Models;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Tests.Models;

/// <summary>
/// Our models against Hugging Face transformers' own outputs (tests/fixtures/reference, produced by
/// make_reference.py from models transformers saved): logits, final hidden states, greedy continuations
/// and a left-padded batch, for every supported family and config switch.
/// </summary>
public class HfParityTests
{
    public static TheoryData<string> Models => new()
    {
        "llama-gqa", "llama-gqa-bf16", "llama-gqa-sharded", "llama-tied-llama3rope", "llama-linear-bias-headdim",
        "mistral-window", "qwen2", "gpt2",
        // transformers 4.47 (make_families.py): Gemma, Gemma 2 (F32 and BF16 weights), OLMo 2, Phi-3, rope variants
        "gemma", "gemma2", "gemma2-bf16", "olmo2", "phi3-window", "phi3-longrope", "qwen2-window", "llama-dynamic", "llama-yarn",
        "falcon-new-arch",
    };

    static string Dir(string name) => Path.Combine(TestPaths.Fixtures, "reference", "models", name);

    static double MaxDiff(Tensor a, Tensor b) => (a.to_type(ScalarType.Float32) - b.to_type(ScalarType.Float32)).abs().max().item<float>();

    [Theory, MemberData(nameof(Models))]
    public void LogitsAndHiddenMatchTransformers(string name)
    {
        using var model = CausalLM.Load(Dir(name));
        using var reference = SafeTensorsFile.Open(Path.Combine(Dir(name), "reference.safetensors"));
        using var ids = reference.Load("input_ids", ScalarType.Int64);
        using var noGrad = no_grad();
        using var hidden = model.Forward(ids.unsqueeze(0));
        using var logits = model.Logits(hidden);
        using var refLogits = reference.Load("logits");
        using var refHidden = reference.Load("hidden");
        Assert.True(MaxDiff(hidden[0], refHidden) <= 1e-4, $"{name}: hidden max diff {MaxDiff(hidden[0], refHidden)}");
        Assert.True(MaxDiff(logits[0], refLogits) <= 1e-4, $"{name}: logits max diff {MaxDiff(logits[0], refLogits)}");
    }

    [Theory, MemberData(nameof(Models))]
    public void GreedyContinuationMatchesTransformers(string name)
    {
        using var model = CausalLM.Load(Dir(name));
        using var reference = SafeTensorsFile.Open(Path.Combine(Dir(name), "reference.safetensors"));
        var prompt = reference.Load("greedy_prompt", ScalarType.Int64).data<long>().Select(x => (int)x).ToArray();
        var expected = reference.Load("greedy_ids", ScalarType.Int64).data<long>().Select(x => (int)x).ToArray();
        var result = new TextGenerator(model, null).Generate([prompt],
            new GenerationOptions { MaxNewTokens = expected.Length, StopIds = [] })[0];
        Assert.Equal(expected, result.TokenIds);
    }

    [Theory, MemberData(nameof(Models))]
    public void LeftPaddedBatchMatchesTransformers(string name)
    {
        using var model = CausalLM.Load(Dir(name));
        using var reference = SafeTensorsFile.Open(Path.Combine(Dir(name), "reference.safetensors"));
        using var ids = reference.Load("batch_ids", ScalarType.Int64);
        using var mask = reference.Load("batch_mask", ScalarType.Int64);
        using var expected = reference.Load("batch_last_logits");
        using var noGrad = no_grad();
        using var hidden = model.Forward(ids, null, null, mask);
        using var last = model.Logits(hidden.select(1, -1));
        Assert.True(MaxDiff(last, expected) <= 1e-4, $"{name}: batch logits max diff {MaxDiff(last, expected)}");
    }

    [Fact]
    public void Bf16AndShardedCheckpointsLoadTheSameValues()
    {
        using var f32 = CausalLM.Load(Dir("llama-gqa"));
        using var sharded = CausalLM.Load(Dir("llama-gqa-sharded"));
        using var bf16 = CausalLM.Load(Dir("llama-gqa-bf16"));
        var a = f32.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in sharded.named_parameters()) Assert.True(a[n].equal(p).all().item<bool>(), $"sharded {n} differs");
        foreach (var (n, p) in bf16.named_parameters())
            Assert.True(a[n].to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).equal(p).all().item<bool>(), $"bf16 {n} is not the rounded f32 value");
        Assert.Equal(ScalarType.Float32, bf16.DType);
    }

    [Fact]
    public void RealTinyLlama2CheckpointMatchesPublishedReference()
    {
        // stas/tiny-random-llama-2 (BF16) with logits computed by transformers 4.53 (the lunaflux corpus).
        var dir = Path.Combine(TestPaths.Artifacts, "tiny-random-llama-2");
        using var model = CausalLM.Load(dir);
        var corpus = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "lunaflux-reference-corpus.json")));
        using var noGrad = no_grad();
        foreach (var c in corpus.RootElement.GetProperty("model_cases").EnumerateArray())
        {
            var ids = c.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            using var input = tensor(ids, [1, ids.Length]);
            using var logits = model.Logits(model.Forward(input))[0, -1];
            foreach (var kv in c.GetProperty("sampled_logits").EnumerateObject())
                Assert.Equal(kv.Value.GetDouble(), logits[int.Parse(kv.Name)].item<float>(), 1e-5);
            Assert.Equal(c.GetProperty("greedy_token").GetInt64(), logits.argmax().item<long>());
            var cont = new TextGenerator(model, null).Generate([ids.Select(x => (int)x).ToArray()],
                new GenerationOptions { MaxNewTokens = 4, StopIds = [] })[0].TokenIds;
            Assert.Equal(c.GetProperty("greedy_continuation").EnumerateArray().Select(x => x.GetInt32()), cont);
        }
    }
}
