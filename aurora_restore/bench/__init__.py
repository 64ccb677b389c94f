"""Benchmarks: the choreography against the runbook's polling loop, scale, cold start and the DB steps."""
