"""Developer tools: instruction counts, bytecodes, garbage collection and the core layer's
cost in isolation. The user-facing benchmarks are one level up (BENCHMARKS.md)."""
