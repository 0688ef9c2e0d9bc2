"""Deadlines for the sync client: one daemon thread wakes at the earliest deadline and
aborts what has passed it. A blocked socket read cannot time itself out by a total
deadline (httpx's timeouts are per read), so something outside it has to. `watch_on_loop`
is the same for a stream read on an event loop: one timer of the loop's per stream, instead
of a cancel scope entered and left around every read (~20 us each, 16 reads an answer).

A `Watch`'s deadline may be pushed later at any time (a stream does, on every event):
that costs one attribute write; the thread notices when it wakes."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

__all__ = ["Watch", "deadline_scope", "watch", "watch_on_loop"]


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


class _LoopWatch(Watch):
    """A `Watch` kept by the running event loop: its timer wakes at the deadline it was set
    for and, when the deadline was moved later since, sleeps again until then."""

    __slots__ = ("_handle", "_loop")

    def __init__(self, deadline: float, on_expire: Callable[[], None]) -> None:
        super().__init__(deadline, on_expire)
        self._loop = asyncio.get_running_loop()
        # Deadlines are time.monotonic() seconds, whatever clock the loop keeps (uvloop's differs).
        self._handle = self._loop.call_later(max(0.0, deadline - time.monotonic()), self._wake)

    def _wake(self) -> None:
        if self.cancelled:
            return
        left = self.deadline - time.monotonic()
        if left > 0:
            self._handle = self._loop.call_later(left, self._wake)
            return
        self.expired = True
        with contextlib.suppress(Exception):
            self.on_expire()

    def cancel(self) -> None:
        self.cancelled = True
        self._handle.cancel()


def watch_on_loop(deadline: float, on_expire: Callable[[], None]) -> Watch:
    """`watch`, on the running event loop: `on_expire()` runs there, once its clock passes the
    deadline (which may be moved later: one attribute write), unless cancelled first."""
    return _LoopWatch(deadline, on_expire)


def deadline_scope(at: float) -> AbstractAsyncContextManager[Any]:
    """On an event loop: a scope around awaited work that raises TimeoutError once
    time.monotonic() passes `at` (a call's deadline, an evaluated row's). On 3.11+ asyncio's own
    (it arms one timer on the task: ~4 us, against anyio's ~11, and no task of its own as
    wait_for made); anyio's scope on 3.10."""
    if sys.version_info >= (3, 11):
        loop = asyncio.get_running_loop()
        return asyncio.timeout_at(loop.time() + max(at - time.monotonic(), 0.0))
    return anyio_deadline_scope(at)


@contextlib.asynccontextmanager
async def anyio_deadline_scope(at: float) -> AsyncIterator[None]:
    """`deadline_scope` before 3.11 (anyio's cancel scope)."""
    with anyio.fail_after(max(at - time.monotonic(), 0.0)):
        yield
