"""placelake: a place-based lakehouse for council and NHS data."""

__version__ = "0.1.0"
