using System.Runtime.CompilerServices;

namespace Superficial.Tests;

internal static class TestSetup
{
    /// <summary>
    /// xunit runs test collections in parallel; one libtorch thread per test keeps the 2 cores busy without
    /// OpenMP threads spinning against each other (which slows tiny-model training many times over).
    /// </summary>
    [ModuleInitializer]
    internal static void SingleThreadedTorch() => TorchSharp.torch.set_num_threads(1);
}
