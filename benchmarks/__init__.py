"""torchflip's benchmark suite; run it with ``python benchmarks/run.py``."""
