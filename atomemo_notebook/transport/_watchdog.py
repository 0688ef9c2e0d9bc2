"""Deadlines for the sync client: one daemon thread wakes at the earliest deadline and
aborts what has passed it. A blocked socket read cannot time itself out by a total
deadline (httpx's timeouts are per read), so something outside it has to.

A `Watch`'s deadline may be pushed later at any time (a stream does, on every event):
that costs one attribute write; the thread notices when it wakes."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable

__all__ = ["Watch", "watch"]


class Watch:
    __slots__ = ("cancelled", "deadline", "expired", "on_expire")

    def __init__(self, deadline: float, on_expire: Callable[[], None]) -> None:
        self.deadline = deadline  # time.monotonic() seconds; may be moved later
        self.on_expire = on_expire
        self.expired = False
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, on_expire: Callable[[], None]) -> Watch:
        item = Watch(deadline, on_expire)
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="atomemo-notebook-deadlines",
                                                daemon=True)
                self._thread.start()
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline, next(self._order), item))
            if earliest is None or deadline < earliest:
                self._wake.notify()
        return item

    def _run(self) -> None:
        while True:
            due: list[Watch] = []
            with self._wake:
                while not due:
                    if not self._heap:
                        self._wake.wait()
                        continue
                    at, _, item = self._heap[0]
                    if item.cancelled:
                        heapq.heappop(self._heap)
                    elif item.deadline > at:  # moved later since it was queued
                        heapq.heapreplace(self._heap, (item.deadline, next(self._order), item))
                    elif at > time.monotonic():
                        self._wake.wait(at - time.monotonic())
                    else:
                        heapq.heappop(self._heap)
                        item.expired = True
                        due.append(item)
            for item in due:
                with contextlib.suppress(Exception):  # an abort that fails has nothing left to abort
                    item.on_expire()


_WATCHDOG = _Watchdog()


def watch(deadline: float, on_expire: Callable[[], None]) -> Watch:
    """Call `on_expire()` (on the watchdog thread) once `time.monotonic()` passes the
    watch's deadline, unless it is cancelled first."""
    return _WATCHDOG.watch(deadline, on_expire)
