"""The retry policy, in one place: how long to wait before another try, read from the
server's hints when it gives sane ones, else our own jittered exponential backoff."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping

__all__ = ["INITIAL_BACKOFF", "MAX_BACKOFF", "MAX_RETRY_AFTER", "backoff_delay", "retry_after"]

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0  # the longest wait a server may ask of a call; a longer one fails the call at once


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, then `Retry-After` as seconds or
    as an HTTP date. None when absent or not a sane number (NaN, infinite, garbage)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        value = _seconds(ms.strip())
        if value is not None:
            return value / 1000.0
    text = headers.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    value = _seconds(text)
    if value is not None:
        return value
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.timestamp() - now()


_JITTER = random.Random()  # our own generator: the global one belongs to the program (and to Hypothesis)


def backoff_delay(attempt: int, hint: float | None = None,
                  rand: Callable[[], float] = _JITTER.random, *, initial: float = INITIAL_BACKOFF,
                  ceiling: float = MAX_BACKOFF) -> float:
    """Seconds before try number `attempt` (1-based): the server's hint if it is within
    0..60 s, else `initial` (0.5 s) doubling up to `ceiling` (8 s), less up to a quarter at
    random (so many clients that failed together do not come back together)."""
    if hint is not None and 0.0 <= hint <= MAX_RETRY_AFTER:
        return hint
    base = min(initial * 2.0 ** min(max(attempt - 1, 0), 64), ceiling)
    return base * (1.0 - 0.25 * rand())
