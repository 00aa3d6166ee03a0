using System.Threading.Channels;
using Superficial.Generation;

namespace Superficial.Serving;

/// <summary>One request to the engine: which variant, the prompt, how to generate, and optionally another alpha for the head.</summary>
public sealed record EngineRequest(string Variant, EncodedPrompt Prompt, GenerationOptions Options, double? Alpha = null);

/// <summary>
/// A submitted request as it runs: <see cref="Tokens"/> yields each generated token as it is chosen (stop tokens
/// excepted), <see cref="Completion"/> gives the whole result (the same record <see cref="TextGenerator"/> returns).
/// Cancelling the token given to Submit frees the request's slot at the next step; Completion then throws
/// <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class GenerationStream
{
    internal readonly Channel<int> channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    internal readonly TaskCompletionSource<GenerationResult> done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal GenerationStream(EngineRequest request, int promptTokens) { Request = request; PromptTokens = promptTokens; }

    public EngineRequest Request { get; }
    public int PromptTokens { get; }
    public ChannelReader<int> Tokens => channel.Reader;
    public Task<GenerationResult> Completion => done.Task;
}
