"""Studies and benchmarks built on the pipeline, which the pipeline never imports: the benchmark, the B-Tuning study, the learning curve, the speed benches and the GPU run."""
