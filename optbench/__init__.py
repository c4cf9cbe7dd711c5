"""optbench: the Modded-NanoGPT Optimization Benchmark as a Python system."""

__version__ = "0.1.0"
