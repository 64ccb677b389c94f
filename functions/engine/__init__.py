"""The step engine: what every step function does around its step's logic (see docs/architecture.md)."""
