using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Superficial.Generation;
using Superficial.Serving;
using AiMessage = Microsoft.Extensions.AI.ChatMessage;
using TextMessage = Superficial.Text.ChatMessage;

namespace Superficial.Server;

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a <see cref="ServingEngine"/> in the same process:
/// the same variants, batching and results as the HTTP server. <see cref="ChatOptions.ModelId"/> picks the
/// variant (default: the one given here); <c>AdditionalProperties["alpha"]</c> sets the head's alpha.
/// Without a temperature it decodes greedily (unlike the HTTP API, whose default is OpenAI's 1.0).
/// </summary>
public sealed class EngineChatClient(ServingEngine engine, string defaultVariant) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (stream, variant) = Submit(messages, options, cancellationToken);
        var result = await stream.Completion.WaitAsync(cancellationToken);
        return new ChatResponse(new AiMessage(ChatRole.Assistant, result.Text))
        {
            ModelId = variant.Name, FinishReason = Finish(result), Usage = Usage(stream, result),
            ResponseId = "chatcmpl-" + Guid.NewGuid().ToString("N"),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (stream, variant) = Submit(messages, options, cancellationToken);
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var text = new IncrementalText(variant.Tokenizer, stream.Request.Options.StopStrings);
        await foreach (var token in stream.Tokens.ReadAllAsync(cancellationToken))
            if (text.Push(token) is { Length: > 0 } piece)
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ModelId = variant.Name, ResponseId = id };
        var result = await stream.Completion.WaitAsync(cancellationToken);
        var last = new ChatResponseUpdate(ChatRole.Assistant, text.Finish(result.Text)) { ModelId = variant.Name, ResponseId = id, FinishReason = Finish(result) };
        last.Contents.Add(new UsageContent(Usage(stream, result)));
        yield return last;
    }

    (GenerationStream, ServedVariant) Submit(IEnumerable<AiMessage> messages, ChatOptions? options, CancellationToken ct)
    {
        var name = options?.ModelId ?? defaultVariant;
        var variant = engine.Find(name) ?? throw new ArgumentException($"the model \"{name}\" does not exist; this engine offers {string.Join(", ", engine.Variants.Select(v => v.Name))}.");
        var prompt = variant.EncodeChat(messages.Select(m => new TextMessage(m.Role.Value, m.Text)).ToArray());
        double? alpha = options?.AdditionalProperties?.TryGetValue("alpha", out var a) == true ? Convert.ToDouble(a) : null;
        var o = new GenerationOptions
        {
            MaxNewTokens = options?.MaxOutputTokens ?? Math.Min(256, engine.Limits.MaxNewTokens),
            Temperature = options?.Temperature ?? 0, TopP = options?.TopP ?? 1.0, Seed = options?.Seed ?? 0,
            StopStrings = options?.StopSequences?.ToArray() ?? [],
        };
        return (engine.Submit(new EngineRequest(variant.Name, prompt, o, alpha), ct), variant);
    }

    static ChatFinishReason Finish(GenerationResult r) => r.Finish == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    static UsageDetails Usage(GenerationStream s, GenerationResult r) => new()
    {
        InputTokenCount = s.PromptTokens, OutputTokenCount = r.TokenIds.Count, TotalTokenCount = s.PromptTokens + r.TokenIds.Count,
    };

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : serviceKey is null && serviceType == typeof(ServingEngine) ? engine
        : serviceKey is null && serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("superficial", null, defaultVariant) : null;

    /// <summary>The engine belongs to whoever created it; disposing the client leaves it running.</summary>
    public void Dispose() { }
}
