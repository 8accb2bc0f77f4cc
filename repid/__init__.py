"""Repid: an async task queue framework with AsyncAPI 3.0 schema generation."""
