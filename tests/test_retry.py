"""The one retry policy shared by page fetches and LLM requests."""

from __future__ import annotations

from digest.retry import MAX_BACKOFF, MAX_RETRY_AFTER, backoff, retry_after


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for retry in range(4):
        for _ in range(50):
            assert 0.5 * 2**retry <= backoff(retry, 1.0) <= 1.5 * 2**retry
    assert backoff(20, 1.0) == MAX_BACKOFF
    assert backoff(3, 0.0) == 0.0


def test_retry_after_reads_milliseconds_then_seconds_and_caps_both() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after-ms": "nan", "retry-after": "9"}) == 9
    assert retry_after({"retry-after-ms": "9999999"}) == MAX_RETRY_AFTER
    assert retry_after({"retry-after": "86400"}) == MAX_RETRY_AFTER
    assert retry_after({"retry-after-ms": "-5"}) == 0.0
    assert retry_after({}) is None and retry_after(None) is None
