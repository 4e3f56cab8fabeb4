"""The one retry policy for HTTP calls (page fetches and LLM requests).

A retried call waits what the server asked for (`Retry-After` in seconds or as an HTTP
date, or `retry-after-ms`), capped at MAX_RETRY_AFTER; otherwise an exponential backoff,
`base · 2^n` for the n-th retry counted from 0, with ±50 % jitter, capped at MAX_BACKOFF.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping

MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 30.0


def backoff(retry: int, base: float) -> float:
    """Seconds to wait before retry number `retry` (0 for the first), jittered and capped."""
    return min(MAX_BACKOFF, base * 2**retry * random.uniform(0.5, 1.5))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After`, if the server said; capped."""
    if headers is None:
        return None
    try:
        milliseconds = float(headers.get("retry-after-ms") or "nan")
    except ValueError:
        milliseconds = math.nan
    if math.isfinite(milliseconds):
        return min(max(milliseconds, 0.0) / 1000, MAX_RETRY_AFTER)
    return parse_retry_after(headers.get("retry-after"))
