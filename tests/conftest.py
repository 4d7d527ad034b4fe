"""Shared pytest setup: the test Ollama server fixtures (tests/support/ollama_fixtures.py)."""

pytest_plugins = ["tests.support.ollama_fixtures"]
