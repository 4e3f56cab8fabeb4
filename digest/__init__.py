"""digest: a weekly newsletter digest composer."""

__version__ = "0.1.0"
