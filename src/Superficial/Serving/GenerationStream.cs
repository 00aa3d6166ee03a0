using System.Threading.Channels;
using Superficial.Generation;

namespace Superficial.Serving;

/// <summary>One request to the engine: which variant, the prompt, how to generate, and optionally another alpha for the head.</summary>
public sealed record EngineRequest(string Variant, EncodedPrompt Prompt, GenerationOptions Options, double? Alpha = null);

/// <summary>The queue of waiting requests is full; the client should retry after <see cref="RetryAfterSeconds"/>.</summary>
public sealed class QueueFullException(int capacity, int retryAfterSeconds)
    : Exception($"the server's queue is full ({capacity} waiting requests); retry in {retryAfterSeconds} s.")
{
    public int RetryAfterSeconds => retryAfterSeconds;
}

/// <summary>The engine no longer accepts requests (it is draining or stopped).</summary>
public sealed class EngineClosedException() : Exception("the server is shutting down and accepts no new requests.");

/// <summary>A request that breaks a limit (prompt length, max_tokens) or names something that does not exist.</summary>
public sealed class RequestRejectedException(string message, string param) : Exception(message)
{
    /// <summary>The request field at fault (OpenAI's error "param").</summary>
    public string Param => param;
}

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
