using Superficial.Bench;

// Benchmarks: each prints throughput as a fraction of the F32 matmul peak measured in the same run.
//   dotnet run -c Release --project bench/Superficial.Bench -- <foundation|method|transfer|toxicity|serve|all> [--quick]
//   ... -- roofline [--bf16] [--batch N] [--quick] [--no-profile | --profile-only] [--profile-batch N]   (extraction, decode, training vs the measured matmul peak and bandwidth)
//   ... -- identity [FOLDER] [--gb 1]   (model identity over every weight byte vs a plain read)
//   ... -- seven-b [--layers 32] [--dir D] [--keep] [--threads N] [--max-memory 18GB]   (a random Llama-2-7B-shape BF16 pair through the CLI: peak memory, time per token)
//   ... -- decode-profile [--bf16] [--rows 1x64,8x448]   (where a decoding step goes: whole step vs each part alone, CPU ms)
//   ... -- scalar-race [--seconds 20]   (TorchSharp frees a temporary Scalar while libtorch reads it; does our decoding avoid it? exit 1 if not)
//   ... -- gemv-variants | lane-variants | fusion-variants | attention-variants | head-variants [--bf16]   (kernel choices, see KernelVariants.cs)
//   ... -- layout-variants   (whole decoding steps with the weights row- or column-major)
Superficial.Tensors.OpenMpThreads.SleepWhenIdle(); // as the superficial command does, before libtorch loads
var which = args.FirstOrDefault(a => !a.StartsWith("--") && !int.TryParse(a, out _)) ?? "all";
bool quick = args.Contains("--quick");
// --threads N: libtorch threads (default: all cores); on a busy shared machine 1 avoids OpenMP threads spinning against other work
int threadsAt = Array.IndexOf(args, "--threads");
TorchSharp.torch.set_num_threads(threadsAt >= 0 ? int.Parse(args[threadsAt + 1]) : Environment.ProcessorCount);
Superficial.Tensors.NativeMemory.KeepFreedMemoryForReuse(); // as the superficial command does
Console.WriteLine($"threads: {TorchSharp.torch.get_num_threads()}, libtorch {TorchSharp.torch.__version__}, {Environment.ProcessorCount} cores");
if (which is "load-child") { FoundationBench.LoadChild(args[1]); return 0; }
if (which is "chat-transcript") { ChatTranscript.Run(args[1], args[2], args.Skip(3)); return 0; }
if (which is "train-child") { MethodBench.TrainChild(args[1], args[2]); return 0; }
if (which is "identity")
{
    var rest = args.Skip(1).ToList();
    int gbAt = rest.IndexOf("--gb");
    double gb = gbAt >= 0 ? double.Parse(rest[gbAt + 1], System.Globalization.CultureInfo.InvariantCulture) : 1;
    if (gbAt >= 0) rest.RemoveRange(gbAt, 2);
    IdentityBench.Run(rest.FirstOrDefault(a => !a.StartsWith("--")), gb);
    return 0;
}
if (which is "extract-family") { MethodBench.ExtractFamily(args[1]); return 0; }   // llama | gemma2: time it from outside
if (which is "seven-b")
{
    try { return SevenBBench.Run(args); }
    catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or FormatException)
    {
        Console.Error.WriteLine($"seven-b: {e.Message}");
        return 2;
    }
}
if (which is "roofline") { RooflineBench.Run(quick, args); return 0; }
if (which is "decode-profile") { DecodeProfile.Run(args); return 0; }
if (which is "scalar-race") return ScalarRace.Run(args);
if (which is "gemv-variants") { GemvVariants.Run(args); return 0; }
if (which is "lane-variants") { LaneVariants.Run(args); return 0; }
if (which is "fusion-variants") { FusionVariants.Run(args); return 0; }
if (which is "attention-variants") { AttentionVariants.Run(args); return 0; }
if (which is "head-variants") { HeadVariants.Run(args); return 0; }
if (which is "layout-variants") { LayoutVariants.Run(args); return 0; }
if (which is "organism") OrganismBench.Run(quick);
if (which is "organism-corpus") OrganismBench.Corpus();
if (which is "organism-compromise")   // organism-compromise FOLDER 1e-4,4e-4 MAX_STEPS BATCH
{
    OrganismBench.Compromise(args[1], args[2].Split(',').Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToList(), int.Parse(args[3]), int.Parse(args[4]));
    return 0;
}
if (which is "foundation" or "all") FoundationBench.Run(quick);
if (which is "method" or "all") MethodBench.Run(quick);
if (which is "transfer" or "all") TransferBench.Run(quick);
if (which is "toxicity" or "all") ToxicityBench.Run(quick);
if (which is "serve" or "all") ServeBench.Run(quick);
return 0;
