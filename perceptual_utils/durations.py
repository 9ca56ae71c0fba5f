"""Durations as people write them: ``--time-budget 30m``, ``1h30m``, ``1.5h``, ``45s`` or ``600``.

A number without a unit *after* a unit is read in the next smaller unit, as a clock or a person
reads it: ``1h30`` is 1 hour 30 minutes (90 minutes, not 1 hour and 30 seconds), ``2m30`` is
2 minutes 30 seconds. A number alone is seconds (``600``). Units must come in the order h, m, s,
each at most once; anything else (``1h30x``, ``30m1h``, ``1s30``, ``-5m``, ``0``) is refused with
a message saying how to write it, never guessed.
"""
from __future__ import annotations

import math
import re

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_NEXT = {"h": "m", "m": "s"}  # the unit a bare trailing number takes after each unit
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([hms]?)\s*")
HOW = "write e.g. 45s, 30m, 1.5h, 1h30m (1h30 also means 90 minutes) or 600 (seconds)"


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text`` (see the module docstring); a positive, finite number.

    Raises:
        ValueError: an unreadable, zero or negative duration (one line, with examples).
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        seconds, last, pos = 0.0, "", 0
        while pos < len(raw):
            match = _TOKEN.match(raw, pos)
            if match is None or match.end() == pos:
                raise ValueError(f"cannot read the duration {text!r}; {HOW}")
            number, unit = float(match.group(1)), match.group(2)
            if not unit:  # bare number: seconds alone, else the unit after the previous one
                if last and last not in _NEXT:
                    raise ValueError(f"cannot read the duration {text!r} (a number after seconds); {HOW}")
                unit = _NEXT[last] if last else "s"
                if match.end() != len(raw) and last:
                    raise ValueError(f"cannot read the duration {text!r}; {HOW}")
            if last and list(_UNITS).index(unit) <= list(_UNITS).index(last):
                raise ValueError(f"cannot read the duration {text!r} (units out of order or repeated); {HOW}")
            seconds += number * _UNITS[unit]
            last, pos = unit, match.end()
        if not last:
            raise ValueError(f"cannot read the duration {text!r}; {HOW}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds


__all__ = ["parse_duration"]
