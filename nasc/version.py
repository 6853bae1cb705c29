"""The version, in a module of its own: every layer can read it without importing the package root
(whose public API imports the compiler)."""

__version__ = "0.1.0"
