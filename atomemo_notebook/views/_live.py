"""The streaming reply on its way to the browser: coalesced `live` messages (at most ~30 per
second, none while nothing changes) sent from the loop that owns the reply."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from ..model.reply import Reply
from ..protocol._wire import Event
from ._view_state import live_view, timeline_view

FLUSH_INTERVAL = 1 / 30  # seconds between live messages to the browser


class LivePump:
    """Sends one streaming reply to the browser from the loop that owns it: the first change
    after a quiet spell schedules one flush, at least FLUSH_INTERVAL after the previous one;
    nothing runs while nothing changes, and the end is flushed at once."""

    def __init__(self, send: Callable[[dict[str, Any]], None], reply: Reply, key: str) -> None:
        self.send, self.reply, self.key = send, reply, key
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.seq = 0
        self.sent = 0  # characters of reply.text already sent
        self.resets = 0  # reply.text_resets already passed on
        self.changes = -1  # reply.changes already passed on: anything but text redraws the timeline
        self.message_id: str | None = None
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        reply.on_update(self._on_event)

    def _on_event(self, reply: Reply, event: Event | None) -> None:
        final = event is None
        if threading.get_ident() != self.thread:  # applied elsewhere: hop onto the owning loop
            self.loop.call_soon_threadsafe(self._schedule, final)
        else:
            self._schedule(final)

    def _schedule(self, final: bool) -> None:
        if final:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush()
            if not self.done.done():
                self.done.set_result(None)
        elif self._timer is None:
            wait = max(0.0, self._last + FLUSH_INTERVAL - time.monotonic())
            self._timer = self.loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        self._timer = None
        self._last = time.monotonic()
        self.flush()

    def flush(self) -> None:
        text = self.reply.text
        msg: dict[str, Any] = {"type": "live", "key": self.key, "status": live_view(self.reply, "")["status"]}
        if self.reply.text_resets != self.resets:
            self.resets = self.reply.text_resets
            msg["reset"] = text  # the stored answer replaced the streamed one
        elif len(text) > self.sent:
            msg["append"] = text[self.sent:]
        self.sent = len(text)
        if self.reply.message_id != self.message_id:
            self.message_id = msg["message_id"] = self.reply.message_id
        if self.reply.changes != self.changes:
            self.changes = self.reply.changes
            msg["timeline"] = timeline_view(self.reply)
        if len(msg) > 3 or self.reply.done:
            self.seq += 1
            msg["seq"] = self.seq
            self.send(msg)

    def snapshot(self) -> dict[str, Any]:
        """What a view that (re)connects mid-answer needs to catch up (the `hello` command's answer)."""
        return {"type": "live_snapshot", "key": self.key, "seq": self.seq,
                "text": self.reply.text[:self.sent], "message_id": self.message_id,
                "status": live_view(self.reply, "")["status"], "timeline": timeline_view(self.reply)}
