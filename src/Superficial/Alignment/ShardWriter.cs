using System.Collections.Concurrent;
using Superficial.IO;
using Superficial.Tensors;
using static TorchSharp.torch;

namespace Superficial.Alignment;

/// <summary>
/// Writes extraction chunk files on a thread of its own, so the models go on decoding while a chunk is written. At most
/// two chunks wait; each is written as before (the JSONL, then the safetensors file that marks the chunk done, each
/// atomically). An error in writing stops the run at the next chunk handed over (or at <see cref="Complete"/>).
/// </summary>
internal sealed class ShardWriter : IDisposable
{
    /// <summary>One chunk's contents; the writer disposes the tensors once written.</summary>
    public sealed record Chunk(string JsonlPath, string Jsonl, string TensorsPath, KeyValuePair<string, Tensor>[] Tensors,
        Dictionary<string, string> Metadata, long Positions);

    readonly BlockingCollection<Chunk> queue = new(boundedCapacity: 2);
    readonly Thread thread;
    Exception? error;

    public ShardWriter()
    {
        thread = new Thread(Work) { IsBackground = true, Name = "extraction shard writer" };
        thread.Start();
    }

    void Work()
    {
        foreach (var c in queue.GetConsumingEnumerable())
        {
            try
            {
                if (error is null)
                {
                    AtomicFile.WriteAllText(c.JsonlPath, c.Jsonl);
                    SafeTensorsWriter.Write(c.TensorsPath, c.Tensors, c.Metadata);
                }
            }
            catch (Exception e) { error ??= e; }
            finally { foreach (var t in c.Tensors) t.Value.Dispose(); }
        }
    }

    /// <summary>Hands a chunk over (waits while two are queued).</summary>
    public void Enqueue(Chunk chunk)
    {
        Throw();
        queue.Add(chunk);
    }

    /// <summary>Waits until every chunk handed over is written; rethrows a writing error.</summary>
    public void Complete()
    {
        queue.CompleteAdding();
        thread.Join();
        Throw();
    }

    void Throw()
    {
        if (error is not null) throw new IOException($"writing an extraction chunk failed: {error.Message}", error);
    }

    public void Dispose()
    {
        if (!queue.IsAddingCompleted) queue.CompleteAdding();
        thread.Join();   // chunks already handed over are complete: let them reach the disk
        queue.Dispose();
    }
}
