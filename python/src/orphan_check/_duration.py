"""Durations as the command line reads them (`1500ms`), from seconds or a timedelta."""

from __future__ import annotations

from datetime import timedelta
from typing import Union

#: Seconds (int or float), or a `datetime.timedelta`.
Seconds = Union[float, int, timedelta]

#: The longest duration the command line accepts.
MAX_SECONDS = 3600.0


def seconds_of(value: Seconds, what: str) -> float:
    """`value` in seconds; raises `TypeError` or `ValueError` with `what` in the message."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be seconds (a number) or a timedelta, not {value!r}")
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"{what} must not be negative (got {value!r})")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{what} must be at most one hour (got {value!r})")
    return seconds


def cli_duration(value: Seconds, what: str, *, positive: bool = False) -> str:
    """`value` as the command line writes durations, to the microsecond: `1500ms`."""
    seconds = seconds_of(value, what)
    if positive and seconds <= 0:
        raise ValueError(f"{what} must be greater than zero (got {value!r})")
    micros = round(seconds * 1_000_000)
    if micros % 1000 == 0:
        return f"{micros // 1000}ms"
    return f"{micros / 1000:.3f}ms"
