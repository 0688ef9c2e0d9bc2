"""The evaluation cache: one JSON line per finished row (its record and its replies' raw
events), appended as each row ends, so an interrupted run loses nothing that finished. A
torn last line (the process died mid-write) is ignored; any other bad line is an error that
names it. Replies are rebuilt through the system's own adapter, offline."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..model.replay import EventLog, ReplyLog, event_wires, log_lines, replay, reply_log, reply_wire
from ..model.reply import Reply
from ..protocol.atomemo.models import format_datetime
from ..protocol.systems import translator_for

__all__ = ["FORMAT", "Cache", "CachedRow"]

FORMAT = "atomemo-notebook/evaluation"
VERSION = 1


class CachedRow:
    def __init__(self, key: str, record: dict[str, Any], replies: list[dict[str, Any]], system: str | None) -> None:
        self.key, self.record, self._replies, self.system = key, record, replies, system

    def rebuild(self) -> list[Reply]:
        """The row's replies, folded again from their saved events."""
        logs: list[ReplyLog] = []
        for number, saved in enumerate(self._replies):
            log = reply_log(saved, self.system)
            for item in saved.get("events", []):
                log.add(number, item)
            logs.append(log)
        return replay(EventLog({"system": self.system}, logs))


def _reply_wire(reply: Reply) -> dict[str, Any]:
    return reply_wire(reply) | {"events": event_wires(reply)}


class Cache:
    """Rows by key. Written from the evaluation's loop, read before it starts."""

    def __init__(self, path: str | Path, system: str | None) -> None:
        """`system=None`: read an existing cache as whatever system wrote it."""
        self.path = Path(path)
        self.system = system
        self.rows: dict[str, CachedRow] = {}
        self._lock = threading.Lock()
        if self.path.exists() and self.path.stat().st_size:
            self._load()
        elif system is None:
            raise FileNotFoundError(f"no evaluation cache at {self.path}")
        else:
            self._append({"type": "header", "format": FORMAT, "version": VERSION, "system": system,
                          "created_at": format_datetime(datetime.now(timezone.utc))})

    def _load(self) -> None:
        """Line by line, each bounded: a big cache never sits whole in memory."""
        header: dict[str, Any] | None = None
        torn: int | None = None  # a line that is not JSON: fine only if nothing follows it
        for number, line in log_lines(self.path):
            if torn is not None:
                raise ValueError(f"{self.path}:{torn}: not JSON")
            try:
                item = json.loads(line)
            except (ValueError, RecursionError):
                torn = number  # torn by a crash mid-write, if it is the last: that row simply runs again
                continue
            header = self._take(item, number, header)
        if header is None:
            raise ValueError(f"{self.path}: no header line; was it written by evaluate(cache=...)?")

    def _take(self, item: Any, number: int, header: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(item, dict):
            raise ValueError(f"{self.path}:{number}: not a JSON object")
        if item.get("type") == "header":
            if item.get("format") != FORMAT:
                raise ValueError(f"{self.path}: not an {FORMAT} cache")
            if not isinstance(item.get("version"), int) or item["version"] > VERSION:
                raise ValueError(f"{self.path}: cache version {item.get('version')!r} is newer than this "
                                 "package reads; upgrade atomemo-notebook")
            if self.system is None:
                self.system = str(item.get("system"))
            if item.get("system") != self.system:
                raise ValueError(f"{self.path} holds {item.get('system')} runs, not {self.system}'s: "
                                 "use another cache file")
            translator_for(item.get("system"))
            return item
        if item.get("type") == "row" and header is not None:
            try:
                self.rows[str(item["key"])] = CachedRow(str(item["key"]), dict(item["record"]),
                                                        list(item["replies"]), self.system)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{self.path}:{number}: {exc}") from None
            return header
        raise ValueError(f"{self.path}:{number}: unexpected line (no header before it?)")

    def _append(self, item: dict[str, Any]) -> None:
        line = json.dumps(item, ensure_ascii=False, default=str) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)  # one write per row: a crash tears at most the last line
            out.flush()

    def store(self, key: str, record: dict[str, Any], replies: list[Reply]) -> None:
        wired = [_reply_wire(r) for r in replies]
        self._append({"type": "row", "key": key, "record": record, "replies": wired})
        self.rows[key] = CachedRow(key, record, wired, self.system)
