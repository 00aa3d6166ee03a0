using static TorchSharp.torch;

namespace Superficial.Tensors;

/// <summary>Element types a safetensors file can hold (the ones this project reads and writes).</summary>
public enum DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool }

/// <summary>Names, sizes and TorchSharp equivalents of <see cref="DType"/>.</summary>
public static class DTypes
{
    public static int SizeOf(DType d) => d switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };

    /// <summary>The dtype's name as the file writes it ("F32", "BF16", "BOOL").</summary>
    public static string Name(DType d) => d == DType.Bool ? "BOOL" : d.ToString();

    public static DType Parse(string name, string file, string tensor) => name switch
    {
        "F64" => DType.F64, "F32" => DType.F32, "F16" => DType.F16, "BF16" => DType.BF16,
        "I64" => DType.I64, "I32" => DType.I32, "I16" => DType.I16, "I8" => DType.I8, "U8" => DType.U8, "BOOL" => DType.Bool,
        _ => throw new SafeTensorsException(file, tensor,
            $"dtype \"{name}\" is not supported (expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)."),
    };

    public static ScalarType ToTorch(DType d) => d switch
    {
        DType.F64 => ScalarType.Float64, DType.F32 => ScalarType.Float32, DType.F16 => ScalarType.Float16,
        DType.BF16 => ScalarType.BFloat16, DType.I64 => ScalarType.Int64, DType.I32 => ScalarType.Int32,
        DType.I16 => ScalarType.Int16, DType.I8 => ScalarType.Int8, DType.U8 => ScalarType.Byte, _ => ScalarType.Bool,
    };

    public static DType FromTorch(ScalarType t) => t switch
    {
        ScalarType.Float64 => DType.F64, ScalarType.Float32 => DType.F32, ScalarType.Float16 => DType.F16,
        ScalarType.BFloat16 => DType.BF16, ScalarType.Int64 => DType.I64, ScalarType.Int32 => DType.I32,
        ScalarType.Int16 => DType.I16, ScalarType.Int8 => DType.I8, ScalarType.Byte => DType.U8, ScalarType.Bool => DType.Bool,
        _ => throw new ArgumentException($"tensors of type {t} cannot be stored in safetensors by this writer."),
    };
}

/// <summary>A malformed or hostile safetensors file, or a request it cannot satisfy. Names the file and, when relevant, the tensor.</summary>
public sealed class SafeTensorsException(string filePath, string? tensorName, string problem)
    : Exception($"{filePath}{(tensorName is null ? "" : $" (tensor \"{tensorName}\")")}: {problem}")
{
    public string FilePath { get; } = filePath;
    public string? TensorName { get; } = tensorName;
}

/// <summary>One tensor's place in a file. <see cref="Begin"/>/<see cref="End"/> are absolute byte offsets, already validated.</summary>
public sealed record TensorEntry(string Name, DType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
