using Superficial.Text;

namespace Superficial.Tests.Text;

/// <summary>tokenizer.model is converted the way transformers builds a fast tokenizer from it.</summary>
public class SentencePieceConversionTests
{
    [Fact]
    public void Merges_derived_from_tokenizer_model_equal_the_published_tokenizer_json_merges()
    {
        // Phi-3-mini's tokenizer.json holds Llama-2's vocabulary and merges exactly (NBSP pieces included).
        var proto = SentencePieceProto.Read(TextFixtures.Artifact("llama2/tokenizer.model"));
        Assert.Equal(32000, proto.Pieces.Count);
        Assert.Equal(2, proto.ModelType);
        Assert.True(proto.ByteFallback);
        Assert.Equal((0, 1, 2), (proto.UnkId, proto.BosId, proto.EosId));
        var vocab = new Dictionary<string, int>();
        for (int i = 0; i < proto.Pieces.Count; i++) vocab.TryAdd(proto.Pieces[i].Piece, i);
        var merges = proto.ExtractMerges(vocab);
        using var doc = TextFixtures.Json(TextFixtures.Artifact("phi3-mini/tokenizer.json"));
        var published = doc.RootElement.GetProperty("model").GetProperty("merges").EnumerateArray()
            .Select(m => m.GetString()!.Split(' ')).Select(p => (p[0], p[1])).ToList();
        Assert.Equal(published.Count, merges.Count);
        Assert.True(published.SequenceEqual(merges), "first difference at " + published.Zip(merges).TakeWhile(x => x.First == x.Second).Count());
    }

    [Fact]
    public void Tokenizer_model_and_phi3_tokenizer_json_agree_including_nbsp()
    {
        var model = TextFixtures.Tokenizer("llama2-model");
        var phi3 = TextFixtures.Tokenizer("phi3-mini");
        foreach (var text in new[] { "a\u00a0b", "price:\u00a0\u00a010\u00a0€", "a" + new string(' ', 20) + "b", "x\t\t\ty" })
            Assert.Equal(phi3.Encode(text, false), model.Encode(text, false));
    }

    [Fact]
    public void A_truncated_model_file_is_reported()
    {
        using var d = TestPaths.NewTempDir("spm");
        var bytes = File.ReadAllBytes(TextFixtures.Artifact("llama2/tokenizer.model"));
        File.WriteAllBytes(d.File("tokenizer.model"), bytes[..1001]);
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(d.Path));
        Assert.Contains("tokenizer.model", e.Message);
    }
}
