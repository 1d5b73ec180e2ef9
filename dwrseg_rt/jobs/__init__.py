"""Whole jobs (segment a video, ...) shared by the CLI, benchmarks and tests."""
