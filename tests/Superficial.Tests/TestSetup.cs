using System.Runtime.CompilerServices;

// Tests run one at a time, as the product runs libtorch: from one thread. With collections in parallel, about
// one full run in four failed inside libtorch (a corrupted Scalar in the tiny organism's clip_grad_norm_,
// "Expected false to be true ... toFloat") while another test drove libtorch from a second thread. The cause:
// TorchSharp 0.107 keeps no temporary Scalar alive through its native call, so a garbage collection that another
// thread's allocations trigger can free it from the finalizer while libtorch reads it (bench scalar-race reproduces
// it; DemoCommand.OneTorchThread).
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Superficial.Tests;

internal static class TestSetup
{
    /// <summary>
    /// One libtorch thread: the tests' models are tiny, and OpenMP threads spinning against other processes
    /// on a 2-core machine slow tiny-model training many times over; it also keeps results independent of the core count.
    /// </summary>
    [ModuleInitializer]
    internal static void SingleThreadedTorch()
    {
        Superficial.Tensors.OpenMpThreads.SleepWhenIdle(); // as the superficial command does, before libtorch loads
        TorchSharp.torch.set_num_threads(1);
        Superficial.Tensors.NativeMemory.KeepFreedMemoryForReuse(); // as the superficial command does
        Superficial.Organism.OrganismTasks.EnsureRegistered(); // as the superficial command's entry point does
    }
}
