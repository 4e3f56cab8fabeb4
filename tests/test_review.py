"""Regression tests from the code review that fit no single module's test file."""

from __future__ import annotations

import time

from digest.faithful import unsupported_claims
from digest.models import Bullet


def test_faithfulness_check_stays_linear_on_long_digit_runs() -> None:
    # A page of digits (a table dump, digits of pi) once took ~40 s here: O(n^2) matching.
    source = "1" * 40_000 + " 매출은 1조 2000억 원."
    started = time.monotonic()
    warnings = unsupported_claims([Bullet(text="매출 1조 2000억 원, 3조 원 목표")], source)
    assert time.monotonic() - started < 5
    assert [w.message for w in warnings] == [
        "figure '3조' not found in the source: \"매출 1조 2000억 원, 3조 원 목표\""
    ]
