"""Fault injection, off by default. In test mode a request may carry

    X-Atomemo-Fault: drop_after=3; times=1; key=some-test

and the server misbehaves on purpose for the first `times` requests with that `key`
(default key: the header itself; default times: 1). Faults:

    status=429 [retry_after=2]   answer that status before any stream (nothing is created)
    plain=1                      ... with a text/plain body instead of JSON (a proxy's error page)
    html=1                       answer 200 with an HTML page instead of an event stream
    drop_after=N                 break the connection after N events (no clean end)
    end_after=N                  end the response cleanly after N events (a proxy's close)
    stall=S [stall_after=N]      after N events, send nothing at all for S seconds
    malformed_after=N            after N events, send a frame that is not JSON
    unknown_after=N              after N events, send an event of an unknown type
    trickle=1                    send the stream one byte per write

`X-Atomemo-Pace: chunk_size=1; chunk_delay=0; node_delay=0` changes a run's pacing.
"""

from __future__ import annotations

import dataclasses
import threading

FAULT_HEADER = "x-atomemo-fault"
PACE_HEADER = "x-atomemo-pace"

_INT_KEYS = {"status", "drop_after", "end_after", "stall_after", "malformed_after",
             "unknown_after", "times", "trickle", "plain", "html"}
_FLOAT_KEYS = {"stall", "retry_after"}


class FaultSyntaxError(ValueError):
    pass


@dataclasses.dataclass
class Fault:
    status: int | None = None
    retry_after: float | None = None
    drop_after: int | None = None
    end_after: int | None = None
    stall: float | None = None
    stall_after: int = 0
    malformed_after: int | None = None
    unknown_after: int | None = None
    trickle: int = 0
    plain: int = 0
    html: int = 0
    times: int = 1
    key: str = ""


def parse_pairs(header: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in header.replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise FaultSyntaxError(f"expected name=value, got {part!r}")
        pairs[name.strip().lower()] = value.strip()
    return pairs


def parse_fault(header: str) -> Fault:
    fault = Fault(key=header)
    for name, value in parse_pairs(header).items():
        try:
            if name in _INT_KEYS:
                setattr(fault, name, int(value))
            elif name in _FLOAT_KEYS:
                setattr(fault, name, float(value))
            elif name == "key":
                fault.key = value
            else:
                raise FaultSyntaxError(f"unknown fault {name!r}")
        except ValueError as exc:
            raise FaultSyntaxError(f"bad value for {name!r}: {value!r} ({exc})") from None
    return fault


class FaultBook:
    """Counts how many requests each fault key has hit, so `times` can run out."""

    def __init__(self) -> None:
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, header: str | None) -> Fault | None:
        """The fault this request should suffer, or None. Raises FaultSyntaxError."""
        if not header:
            return None
        fault = parse_fault(header)
        with self._lock:
            hits = self._hits.get(fault.key, 0)
            self._hits[fault.key] = hits + 1
        return fault if hits < fault.times else None
