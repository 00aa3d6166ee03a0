namespace Superficial.Serving;

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
