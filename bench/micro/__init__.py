"""Micro-benchmarks (pytest-benchmark): every operation per client kind, bare stacks, and serialization."""
