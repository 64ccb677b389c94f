"""Operator tooling for aurora-restore: the CLI, the embedded local runtime, chaos and benchmarks.

Kept out of the Lambda package.
"""
