"""Durations as ``--time-budget`` reads them: units h, m, s in order, a bare number after a unit in
the next smaller one (``1h30`` is 90 minutes), a number alone in seconds; everything else refused."""
from __future__ import annotations

import pytest

from perceptual_utils.durations import parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("30m", 1800), ("1h30m", 5400), ("90s", 90), ("600", 600), (45, 45), ("2h", 7200), ("1.5m", 90),
    ("1.5h", 5400), ("45s", 45), ("90m", 5400), ("1h 30m", 5400), ("1H30M", 5400), ("1h30m15s", 5415),
    # a bare number after a unit is in the next smaller unit, as people mean it (was 1 h 30 s)
    ("1h30", 5400), ("2m30", 150), ("1h30m15", 5415)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "-5m", "0", "m", "1h30x", "30m1h", "1h1h", "1s30", "30 45",
                                 "1h30 5s", "inf", "nan", "0h0m", True, -5, float("inf")])
def test_parse_duration_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="duration") as info:
        parse_duration(bad)
    assert "\n" not in str(info.value)
