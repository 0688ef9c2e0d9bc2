"""Process-wide helpers for views: one background event loop (so the kernel stays free
while answers stream) and the embedded demo server, started once on first use."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..server import LocalServer

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_server: LocalServer | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The background loop, started on first use; a daemon thread, so it never blocks exit."""
    global _loop
    with _lock:
        if _loop is None:
            new = asyncio.new_event_loop()
            threading.Thread(target=new.run_forever, name="atomemo-notebook-loop", daemon=True).start()
            _loop = new
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    return asyncio.run_coroutine_threadsafe(coro, loop())


def call_soon(callback: Any, *args: Any) -> None:
    loop().call_soon_threadsafe(callback, *args)


def on_loop() -> bool:
    """Called on the background loop itself: waiting there for that loop would deadlock."""
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def is_demo(base_url: str) -> bool:
    """Whether a client's base URL is this process's demo server."""
    return _server is not None and _server.running and base_url == _server.base_url


def demo_server() -> LocalServer:
    """The embedded server every offline widget shares (in-memory history, demo pacing)."""
    global _server
    with _lock:
        if _server is None or not _server.running:
            from ..server import LocalServer

            _server = LocalServer().start()
            atexit.register(_server.close)
        return _server
