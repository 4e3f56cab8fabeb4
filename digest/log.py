"""Logging: the standard `logging` module, one logger per module, one stderr handler.

The library only logs (`logging.getLogger(__name__)`); the CLI calls `configure` once with
the verbosity from `-v`/`-q` or, when neither is given, from `DIGEST_LOG` (debug, info,
warning, error). Every record passes through a filter that masks the process's secrets
(API keys, passwords, tokens), so a secret never reaches a log line even by accident.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping

ENV_VAR = "DIGEST_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS |= {"error": logging.ERROR}
_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_PASSWORD", "_SECRET")


def level_for(verbose: int, quiet: bool, environ: Mapping[str, str] | None = None) -> int:
    """The log level: -q → errors only; -v → info; -vv → debug; else DIGEST_LOG, else warning."""
    if quiet:
        return logging.ERROR
    if verbose:
        return logging.INFO if verbose == 1 else logging.DEBUG
    env = os.environ if environ is None else environ
    name = env.get(ENV_VAR, "").strip().lower()
    return LEVELS.get(name, logging.WARNING)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of variables that hold secrets (API keys, tokens, passwords)."""
    env = os.environ if environ is None else environ
    return [
        value
        for name, value in env.items()
        if name.upper().endswith(_SECRET_SUFFIXES) and len(value) >= 4
    ]


class RedactSecrets(logging.Filter):
    """Replace every known secret value in a record's final text with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, *secrets: str) -> None:
        """Also mask these values (e.g. secrets read from a workspace's .env)."""
        self.secrets = sorted({*self.secrets, *(s for s in secrets if s)}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        masked = text
        for secret in self.secrets:
            masked = masked.replace(secret, "***")
        if masked != text:
            record.msg, record.args = masked, None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: int) -> RedactSecrets:
    """Send the `digest` loggers' records at `level` and above to stderr; returns the filter."""
    logger = logging.getLogger("digest")
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    redact = next((f for f in handler.filters if isinstance(f, RedactSecrets)), None)
    if redact is None:
        redact = RedactSecrets()
        handler.addFilter(redact)
    redact.add(*secret_values())
    logger.propagate = False
    return redact


def mask_secrets(*secrets: str) -> None:
    """Mask these values in every log line from now on (secrets read from .env)."""
    for handler in logging.getLogger("digest").handlers:
        for flt in handler.filters:
            if isinstance(flt, RedactSecrets):
                flt.add(*secrets)


def is_quiet() -> bool:
    """True when only errors are wanted (-q, or DIGEST_LOG=error): no progress lines."""
    return logging.getLogger("digest").getEffectiveLevel() >= logging.ERROR
