"""Scenario files: the YAML schema (pydantic) and dotted parameter paths."""
