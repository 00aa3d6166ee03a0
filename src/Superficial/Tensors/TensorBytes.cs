using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>Raw byte access to a contiguous CPU tensor, in pieces small enough for a Span (under 2 GB each).</summary>
internal static class TensorBytes
{
    const long MaxChunk = 1L << 30;

    /// <summary>Views of consecutive ranges of the tensor's elements, with their byte lengths; dispose each view after use.</summary>
    public static IEnumerable<(Tensor View, long Bytes)> Chunks(Tensor contiguous)
    {
        if (!contiguous.is_contiguous()) throw new ArgumentException("tensor must be contiguous.");
        long elem = contiguous.element_size(), n = contiguous.numel();
        if (n == 0) yield break;
        long per = Math.Max(1, MaxChunk / elem);
        using var flat = contiguous.view(-1);
        for (long start = 0; start < n; start += per)
        {
            long count = Math.Min(per, n - start);
            yield return (flat.narrow(0, start, count), count * elem);
        }
    }
}
