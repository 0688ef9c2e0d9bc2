"""A reply's run as a tape for time travel: its event log folded once, by the live fold
(Reply.apply through model.timetravel.Refold) and the live messages' own diff (live.Delta),
into one small patch per event that changed what is shown. The browser replays the patches,
keeping checkpoints, exactly as it applies live messages: it never folds events itself, so
there is one fold, here.

Bounded: at most TAPE_EVENTS events and TAPE_CHARS characters of patches per reply; a run
longer than that gets the tape of its beginning, and `cut` says where and why."""

from __future__ import annotations

import json
from typing import Any

from ..model._timetravel import Refold
from ..model.reply import Reply
from ._live import Delta
from ._view_state import run_clock
from ._widget_protocol import NodeView, TapePatch, TapeView, TimelineView

TAPE_EVENTS = 20_000  # events of one reply on its tape
TAPE_CHARS = 8_000_000  # characters of one reply's patches (node views are cut at OUTPUT_CAP each)


class Tape:
    """One reply's tape, grown as far as its events go; asked again, a streaming reply's tape
    goes on from where it stopped (the fold is never run twice)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.refold = Refold(reply)
        self.delta = Delta()
        self.timeline: dict[str, Any] = {}
        self.nodes: list[NodeView] = []
        self.offsets_ms: list[float] = []
        self.names: list[str] = []
        self.patches: list[TapePatch] = []
        self.chars = 0
        self.cut: str | None = None

    def grow(self) -> None:
        refold, records = self.refold, self.reply.events
        while self.cut is None:
            before = refold.count
            if before >= TAPE_EVENTS and before < len(records):
                self.cut = (f"the tape stops at event {before:,} of {len(records):,}: "
                            f"at most {TAPE_EVENTS:,} events of one reply are replayed")
                break
            if not refold.step():
                break
            grew = refold.count > before
            if grew:
                self.offsets_ms.append(round((records.offset(refold.count - 1) or 0.0) * 1000.0, 1))
                self.names.append(records.name(refold.count - 1))
            patch = self._patch(refold.count - 1, self.delta.take(refold.then))
            if patch is None:
                continue
            size = len(json.dumps(patch, ensure_ascii=False, default=str))
            if self.chars + size > TAPE_CHARS:
                self.cut = (f"the tape stops at event {refold.count - 1:,} of {len(records):,}: "
                            f"its patches would pass {TAPE_CHARS:,} characters")
                if grew:
                    del self.offsets_ms[-1], self.names[-1]
                break
            self.chars += size
            self.patches.append(patch)

    def _patch(self, e: int, delta: dict[str, Any]) -> TapePatch | None:
        if e < 0:
            return None
        patch: TapePatch = {"e": e}
        if "reset" in delta:
            patch["reset"] = delta["reset"]
        elif "append" in delta:
            patch["append"] = delta["append"]
        timeline: TimelineView | None = delta.get("timeline")
        summary: dict[str, Any] = {}
        if "message_id" in delta:
            summary["message_id"] = delta["message_id"]
        if timeline is not None:
            changed = [(i, node) for i, node in enumerate(timeline["nodes"])
                       if i >= len(self.nodes) or self.nodes[i] != node]
            if changed:
                patch["nodes"] = changed
            self.nodes = list(timeline["nodes"])
            for key, value in timeline.items():
                if key != "nodes" and self.timeline.get(key, object()) != value:
                    summary[key] = value
            self.timeline = {k: v for k, v in timeline.items() if k != "nodes"}
        else:  # the text moved: the clock and status may have too
            for key, value in run_clock(self.refold.then).items():
                if self.timeline.get(key, object()) != value:
                    summary[key] = self.timeline[key] = value
        if summary:
            patch["summary"] = summary
        return patch if len(patch) > 1 else None

    def view(self, since: int = 0, patches: int = 0) -> TapeView:
        """The tape from event `since` and patch `patches` on (0, 0: all of it): a streaming
        reply's end may patch an event the browser already has."""
        self.grow()
        events = len(self.offsets_ms)
        since = max(0, min(since, events))
        patches = max(0, min(patches, len(self.patches)))
        return {"message_id": self.reply.message_id, "since": since, "events": events,
                "offsets_ms": self.offsets_ms[since:], "names": self.names[since:],
                "patch_since": patches, "patches": self.patches[patches:],
                "done": self.cut is not None or (self.reply.done and self.refold.ended),
                "cut": self.cut}


def tape_view(reply: Reply) -> TapeView:
    """The whole tape of one reply (a finished one, or a streaming one so far)."""
    return Tape(reply).view()


class Tapes:
    """The tapes a view asked for, newest kept (a few: each is bounded by TAPE_CHARS)."""

    KEEP = 4

    def __init__(self) -> None:
        self.kept: list[Tape] = []

    def of(self, reply: Reply) -> Tape:
        for tape in self.kept:
            if tape.reply is reply:
                self.kept.remove(tape)
                self.kept.append(tape)
                return tape
        tape = Tape(reply)
        self.kept = [*self.kept[-(self.KEEP - 1):], tape]
        return tape
