"""The package version, in a module of its own so any layer can name it without importing the
public API in ``policygate/__init__.py`` (which reaches every layer)."""

__version__ = "0.1.0"
