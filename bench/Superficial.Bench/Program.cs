// Benchmarks: each prints throughput against a matmul peak measured in the same run.
return 0;
