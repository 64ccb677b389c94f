"""Pydantic models for events, configuration and state; their JSON Schema lives in schemas/jsonschema/."""
