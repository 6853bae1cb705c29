"""Jinja templates of the emitted code."""
