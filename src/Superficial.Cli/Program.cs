using System.CommandLine;
using Superficial.Cli;
using Superficial.Cli.Commands;

// `superficial`: measure, extract and reuse the superficial knowledge in LLM alignment.
Superficial.Tensors.OpenMpThreads.SleepWhenIdle(); // before libtorch loads
Superficial.Tensors.NativeMemory.KeepFreedMemoryForReuse();
Superficial.Organism.OrganismTasks.EnsureRegistered(); // the embedded default's tasks, beside the registry's benchmarks
var root = new RootCommand("Superficial: measure, extract and reuse the superficial knowledge in LLM alignment " +
                           "(Chen et al., NAACL 2025).");
ModelCommands.Add(root);
AlignmentCommands.Add(root);
EvalCommands.Add(root);
OrganismCommands.Add(root);
DemoCommand.Add(root);
AnalyzeCommand.Add(root);
ServeCommand.Add(root);
return await Cli.RunAsync(root, args);
