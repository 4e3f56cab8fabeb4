"""digest: a weekly newsletter digest composer."""

__version__ = "0.2.0"
