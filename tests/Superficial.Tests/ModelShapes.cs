using Superficial.Models;

namespace Superficial.Tests;

/// <summary>Real models' shapes for tests that compute sizes and plans without weights.</summary>
internal static class ModelShapes
{
    /// <summary>Llama-2-7B: hidden 4096, 32 layers, MLP 11008, vocab 32000, untied head.</summary>
    public static readonly ModelConfig Llama2_7B = ModelConfig.Llama(vocabSize: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 32,
        intermediate: 11008, maxPositions: 4096, tieWordEmbeddings: false);
}
