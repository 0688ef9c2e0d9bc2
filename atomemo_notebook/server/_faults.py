"""Fault injection, off by default. In test mode a request may carry

    X-Atomemo-Fault: drop_after=3; times=1; key=some-test

and the server misbehaves on purpose for the first `times` requests with that `key`
(default key: the header itself; default times: 1); with `path=/chat-messages` only requests
whose path holds that text count. Faults:

    status=429 [retry_after=2]   answer that status before any stream (nothing is created);
                                 retry_after is sent as given (NaN too); retry_after_ms=1500
                                 sends Retry-After-Ms; retry_after_in=3 sends an HTTP date 3 s on
    plain=1                      ... with a text/plain body instead of JSON (a proxy's error page)
    html=1                       answer 200 with an HTML page instead of an event stream
    drop_after=N                 break the connection after N events (no clean end)
    end_after=N                  end the response cleanly after N events (a proxy's close)
    stall=S [stall_after=N]      after N events, send nothing at all for S seconds
    malformed_after=N            after N events, send a frame that is not JSON
    unknown_after=N              after N events, send an event of an unknown type
    ws_drop_after=N              Pipelit: close the WebSockets watching the workflow after N events
                                 of this execution (the run goes on)
    answer_delay=S               answer S seconds late (Pipelit's POST: its events race ahead)
    error_after=N                after N events, send the system's error event and end (Dify's
                                 `error`; Atomemo's run ends failed with that error)
    trickle=1 [trickle_delay=S]  send the answer (stream or JSON) one byte per write, S s apart
      [trickle_after=N]          ... a stream from its event N on
    store_fail=1                 make the run's final database write fail midway (a constraint
                                 violation inside its transaction)
    gzip_bomb=MB                 answer (with the fault's status, else 200) a gzip body that
                                 inflates to MB MiB with no line break
    no_newline=MB                answer an event stream of MB MiB that never breaks a line
    reset=1                      close the connection without any answer
    crash=1                      fail inside the handler (the server must still answer properly)

`X-Atomemo-Pace: chunk_size=1; chunk_delay=0; node_delay=0` changes a run's pacing.
"""

from __future__ import annotations

import dataclasses
import email.utils
import math
import threading
import time

FAULT_HEADER = "x-atomemo-fault"
PACE_HEADER = "x-atomemo-pace"

_INT_KEYS = {"status", "drop_after", "end_after", "stall_after", "malformed_after",
             "unknown_after", "error_after", "ws_drop_after", "times", "trickle", "plain", "html", "gzip_bomb",
             "no_newline", "reset", "crash", "trickle_after", "store_fail"}
_FLOAT_KEYS = {"stall", "trickle_delay", "retry_after_in", "answer_delay"}
_TEXT_KEYS = {"retry_after", "retry_after_ms", "key", "path"}
# Even test-mode faults are bounded: a header must not take the server down.
_BOUNDS = {"answer_delay": 30.0, "stall": 600.0, "trickle_delay": 10.0, "retry_after_in": 3600.0, "gzip_bomb": 2048,
           "no_newline": 1024, "times": 1_000_000}


class FaultSyntaxError(ValueError):
    pass


@dataclasses.dataclass
class Fault:
    status: int | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    retry_after_in: float | None = None
    drop_after: int | None = None
    end_after: int | None = None
    stall: float | None = None
    stall_after: int = 0
    malformed_after: int | None = None
    unknown_after: int | None = None
    error_after: int | None = None
    ws_drop_after: int | None = None
    answer_delay: float = 0.0
    trickle: int = 0
    plain: int = 0
    html: int = 0
    trickle_delay: float = 0.0
    gzip_bomb: int = 0
    no_newline: int = 0
    reset: int = 0
    crash: int = 0
    trickle_after: int = 0
    store_fail: int = 0
    times: int = 1
    key: str = ""
    path: str = ""  # only requests whose path contains this

    def retry_headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.retry_after_ms is not None:
            headers["Retry-After-Ms"] = self.retry_after_ms
        if self.retry_after_in is not None:
            headers["Retry-After"] = email.utils.formatdate(time.time() + self.retry_after_in, usegmt=True)
        return headers


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
                number: float = int(value)
            elif name in _FLOAT_KEYS:
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError("not a finite number")
            elif name in _TEXT_KEYS:
                setattr(fault, name, value)
                continue
            else:
                raise FaultSyntaxError(f"unknown fault {name!r}")
        except ValueError as exc:
            raise FaultSyntaxError(f"bad value for {name!r}: {value!r} ({exc})") from None
        if number < 0 or number > _BOUNDS.get(name, 1_000_000_000):
            raise FaultSyntaxError(f"{name}={value} is out of range (0..{_BOUNDS.get(name, 1_000_000_000)})")
        setattr(fault, name, number)
    return fault


class FaultBook:
    """Counts how many requests each fault key has hit, so `times` can run out."""

    def __init__(self) -> None:
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, header: str | None, path: str = "") -> Fault | None:
        """The fault this request should suffer, or None. Raises FaultSyntaxError."""
        if not header:
            return None
        fault = parse_fault(header)
        if fault.path and fault.path not in path:
            return None
        with self._lock:
            hits = self._hits.get(fault.key, 0)
            self._hits[fault.key] = hits + 1
        return fault if hits < fault.times else None
