using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Superficial.Tests.Evaluation.Judges;

/// <summary>What the test server received.</summary>
public sealed record ReceivedRequest(int Index, string Path, string? Authorization, string Body, DateTime At)
{
    public string Prompt => JsonDocument.Parse(Body).RootElement.GetProperty("messages")[0].GetProperty("content").GetString()!;
}

/// <summary>What the test server answers: a status, a body, headers, and an optional delay before answering.</summary>
public sealed record ScriptedReply(int Status, string Body, TimeSpan Delay = default, (string, string)[]? Headers = null)
{
    /// <summary>A well-formed chat-completions reply whose message is <paramref name="content"/>.</summary>
    public static ScriptedReply Chat(string content, TimeSpan delay = default) => new(200, JsonSerializer.Serialize(new
    {
        id = "x", @object = "chat.completion",
        choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = "stop" } },
    }), delay);
}

/// <summary>
/// A real HTTP server on 127.0.0.1 (HttpListener) that answers each request with a scripted reply,
/// recording requests and the largest number in flight at once.
/// </summary>
public sealed class ScriptedJudgeServer : IDisposable
{
    readonly HttpListener _listener = new();
    readonly Func<ReceivedRequest, ScriptedReply> _script;
    readonly List<ReceivedRequest> _requests = [];
    readonly Task _loop;
    int _inFlight, _maxInFlight, _count;

    public ScriptedJudgeServer(Func<ReceivedRequest, ScriptedReply> script)
    {
        _script = script;
        var port = FreePort();
        BaseUrl = $"http://127.0.0.1:{port}/v1";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    public string BaseUrl { get; }
    public IReadOnlyList<ReceivedRequest> Requests { get { lock (_requests) return _requests.ToArray(); } }
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    async Task AcceptLoop()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    async Task Handle(HttpListenerContext ctx)
    {
        int now = Interlocked.Increment(ref _inFlight);
        int seen;
        while (now > (seen = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, seen) != seen) { }
        try
        {
            string body;
            using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8)) body = await reader.ReadToEndAsync();
            var req = new ReceivedRequest(Interlocked.Increment(ref _count) - 1, ctx.Request.Url!.AbsolutePath,
                ctx.Request.Headers["Authorization"], body, DateTime.UtcNow);
            lock (_requests) _requests.Add(req);
            var reply = _script(req);
            if (reply.Delay > TimeSpan.Zero) await Task.Delay(reply.Delay);
            ctx.Response.StatusCode = reply.Status;
            foreach (var (k, v) in reply.Headers ?? []) ctx.Response.Headers[k] = v;
            ctx.Response.ContentType = "application/json";
            var bytes = Encoding.UTF8.GetBytes(reply.Body);
            ctx.Response.ContentLength64 = bytes.Length;
            await ctx.Response.OutputStream.WriteAsync(bytes);
            ctx.Response.Close();
        }
        catch (Exception) { /* the client gave up (time-out test); nothing to answer */ }
        finally { Interlocked.Decrement(ref _inFlight); }
    }

    public void Dispose()
    {
        try { _listener.Stop(); _listener.Close(); } catch (ObjectDisposedException) { }
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
