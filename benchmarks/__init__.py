"""simlab benchmarks: `python -m benchmarks` prints one table (see README)."""
