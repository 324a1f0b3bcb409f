"""Batch files: /imports and /exports."""
