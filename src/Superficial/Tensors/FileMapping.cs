using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>
/// A file mapped copy-on-write (MAP_PRIVATE): tensors made by <see cref="Alias"/> read its bytes in place, so weights
/// stored in the compute dtype are never copied (a 7B BF16 checkpoint costs its page cache, not 13 GB more), and a
/// write to such a tensor changes a private copy of the page, never the file. The mapping lives until it is
/// disposed and the last aliasing tensor is freed (libtorch calls back when a storage dies).
/// </summary>
internal sealed unsafe class FileMapping : IDisposable
{
    readonly MemoryMappedFile map;
    readonly MemoryMappedViewAccessor view;
    int references = 1; // the owner's; one more per live tensor
    int disposed;
    public byte* Pointer { get; }
    public long Length { get; }

    public FileMapping(string path, long length)
    {
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.CopyOnWrite);
        view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.CopyOnWrite);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Pointer = p + view.PointerOffset;
        Length = length;
    }

    /// <summary>
    /// A CPU tensor of <paramref name="dtype"/> and <paramref name="shape"/> over the bytes at <paramref name="offset"/>,
    /// or null when they cannot be aliased (no bytes, or not aligned to the element size, which kernels assume).
    /// </summary>
    public Tensor? Alias(long offset, long byteLength, ScalarType dtype, long[] shape)
    {
        if (byteLength == 0 || offset < 0 || offset + byteLength > Length) return null;
        var data = (nint)(Pointer + offset);
        if (data % ElementSize(dtype) != 0) return null;
        lock (Live)
        {
            if (!Live.TryGetValue(data, out var owners)) Live[data] = owners = [];
            owners.Add(this);
        }
        Interlocked.Increment(ref references);
        nint handle;
        fixed (long* dims = shape)
            handle = THSTensor_new(data, (nint)(delegate* unmanaged[Cdecl]<nint, void>)&OnStorageFreed, dims, shape.Length,
                (sbyte)dtype, (sbyte)dtype, 0, 0, false);
        if (handle == 0)
        {
            Forget(data);
            throw new InvalidOperationException($"libtorch refused a tensor over a mapped file ({dtype}, [{string.Join(", ", shape)}]).");
        }
        return Tensor.UnsafeCreateTensor(handle);
    }

    static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Which mappings the data pointers of live aliasing tensors belong to (libtorch's deleter passes only the pointer).</summary>
    static readonly Dictionary<nint, List<FileMapping>> Live = [];

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    static void OnStorageFreed(nint data)
    {
        try { Forget(data); }
        catch
        {
            // never unwind into libtorch
        }
    }

    static void Forget(nint data)
    {
        {
            FileMapping? owner = null;
            lock (Live)
                if (Live.TryGetValue(data, out var owners))
                {
                    owner = owners[^1];
                    owners.RemoveAt(owners.Count - 1);
                    if (owners.Count == 0) Live.Remove(data);
                }
            owner?.Release();
        }
    }

    void Release()
    {
        if (Interlocked.Decrement(ref references) != 0) return;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0) Release();
    }

    [DllImport("LibTorchSharp")]
    static extern nint THSTensor_new(nint data, nint deleter, long* dims, int ndims, sbyte type, sbyte dtype, int deviceType, int deviceIndex,
        [MarshalAs(UnmanagedType.U1)] bool requiresGrad);
}
