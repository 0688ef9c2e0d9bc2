"""The evaluation cache: one JSON line per finished row (its record and its replies' raw
events), appended as each row ends, so an interrupted run loses nothing that finished.

A damaged file never stops a run nor loses a row for good: a line that is not JSON (torn by a
crash mid-write) or not a row of the right shape is skipped with a warning naming its file and
line, and its row is asked again. Every append starts on a fresh line and is one write of a
whole line, taken back if the disk refuses part of it. One run at a time writes a cache: it
holds an exclusive lock on the file, so a second process's run waits, then asks only what the
first did not. Replies are rebuilt through the system's own adapter, offline, as it is read,
each with the node names its live run had from the app's description (Atomemo's and Pipelit's
events name a node by its id only)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..model import _replay as _replay
from ..model._replay import EventLog, ReplyLog, event_wires, log_lines, replay, reply_log, reply_wire
from ..model.reply import Reply
from ..protocol._systems import translator_for
from ..protocol._wire import format_datetime
from ._inputs import MAX_REPEATS, MAX_ROWS

__all__ = ["ASKED_AGAIN", "FORMAT", "Cache", "CacheWarning", "CachedRow", "reply_item"]

FORMAT = "atomemo-notebook/evaluation"
VERSION = 1
HEADER_START = json.dumps({"type": "header", "format": FORMAT})[:-1]  # how every header line this package writes begins
STATUSES = ("succeeded", "failed", "stopped")  # a row's status once it has ended
LOCK_POLL = 0.1  # seconds between tries for a lock another run holds
ASKED_AGAIN = "their rows are asked again"
WARN_LINES = 20  # skipped lines named one by one in a warning; the rest are counted
SAID = 300  # characters of an error the rebuild met, quoted in its own

_NONE = type(None)
_RECORD_FIELDS: dict[str, tuple[type, ...]] = {  # what the table, summary and widget do arithmetic on or show
    "row": (int,), "key": (str,), "conversation": (str, _NONE), "query": (str,), "status": (str,),
    "answer": (str, _NONE), "error": (str, _NONE), "failed_node": (str, _NONE), "message_id": (str, _NONE),
    "conversation_id": (str, _NONE), "ttft_s": (int, float, _NONE), "total_s": (int, float, _NONE),
    "prompt_tokens": (int, _NONE), "completion_tokens": (int, _NONE), "total_tokens": (int, _NONE),
    "cost": (int, float, _NONE), "currency": (str, _NONE), "nodes": (int,), "tool_calls": (int,), "cached": (bool,),
    "outputs": (str, _NONE),
    "form": (str, _NONE), "repeat": (int,),
}
_RECORD_BOUNDS = {"row": MAX_ROWS, "repeat": MAX_REPEATS}  # as evaluate() bounds them: a row's place, its ask
_REPLY_FIELDS: dict[str, tuple[type, ...]] = {  # a reply line's (replay.reply_wire), which the rebuild trusts
    "query": (str, dict), "message_id": (str, _NONE), "parent_id": (str, _NONE), "started_at": (str, _NONE),
    "status": (str,), "finished": (int, float, _NONE), "node_names": (dict,),
}


class CacheWarning(UserWarning):
    """Lines of an evaluation cache were skipped: their rows are asked again."""


class CachedRow:
    """A row read back: its record and its replies, already rebuilt. `problem` (file:line: why)
    when its replies could not be: the row is then asked again, or shown failed offline."""

    def __init__(self, key: str, record: dict[str, Any], replies: list[Reply], line: int | None = None,
                 problem: str | None = None) -> None:
        self.key, self.record, self.replies, self.line, self.problem = key, record, replies, line, problem


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"the number {value!r:.40}" if isinstance(value, int | float) else type(value).__name__)


def _said(exc: BaseException) -> str:
    """What an exception of the rebuild says, short: it may quote a hostile value whole."""
    text = str(exc)
    return text if len(text) <= SAID else f"{text[:SAID]}... ({len(text):,} characters)"


def _check_fields(item: dict[str, Any], fields: dict[str, tuple[type, ...]], where: str) -> None:
    for name, types in fields.items():
        value = item.get(name)
        if name in item and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            raise ValueError(f"'{where}.{name}' must be {' or '.join(_kind_of(t) for t in types)}, got {_kind(value)}")


def _check_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError(f"'record' must be an object, got {_kind(record)}")
    for name in ("query", "status"):
        if name not in record:
            raise ValueError(f"'record' has no {name!r}")
    _check_fields(record, _RECORD_FIELDS, "record")
    for name, bound in _RECORD_BOUNDS.items():
        if name in record and not 0 <= record[name] < bound:
            raise ValueError(f"'record.{name}' must be from 0 to {bound - 1:,}, got {record[name]!r:.40}")
    if record["status"] not in STATUSES:
        raise ValueError(f"'record.status' must be one of {', '.join(STATUSES)}, got {record['status']!r:.40}")
    return record


def _kind_of(kind: type) -> str:
    return {int: "a whole number", float: "a number", str: "a string", bool: "a boolean", _NONE: "null",
            dict: "an object"}[kind]


def reply_item(reply: Reply) -> dict[str, Any]:
    """A reply as the cache and the Parquet file keep it: its line, the names of the nodes it ran
    as the live run knew them (from the app's description, which the events may not repeat), and
    its events. Only the nodes it ran: the app's whole map would be kept again on every row."""
    known = reply._node_names
    names = {s.node_id: list(known[s.node_id]) for s in reply.nodes if s.node_id in known}
    return reply_wire(reply) | {"node_names": names, "events": event_wires(reply)}


def _node_names(saved: dict[str, Any], where: str) -> dict[str, list[str]]:
    """A saved reply's node names, checked (bounded with the line that holds them); none in a
    file written before they were kept: its nodes are then named by their ids."""
    names = saved.get("node_names", {})
    for node, pair in names.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise ValueError(f"{where}.node_names[{node!r:.40}] must be [name, type], got {_kind(pair)}")
    return dict(names)


def _rebuild(replies: Any, system: str | None, number: int) -> list[Reply]:
    """The row's replies folded again from their saved events; a ValueError says which part is wrong."""
    if not isinstance(replies, list):
        raise ValueError(f"'replies' must be a list, got {_kind(replies)}")
    logs: list[tuple[ReplyLog, dict[str, list[str]]]] = []
    for index, saved in enumerate(replies):
        where = f"'replies[{index}]'"
        if not isinstance(saved, dict):
            raise ValueError(f"{where} must be an object, got {_kind(saved)}")
        _check_fields(saved, _REPLY_FIELDS, f"replies[{index}]")
        names = _node_names(saved, where)
        events = saved.get("events", [])
        if not isinstance(events, list):
            raise ValueError(f"{where}.events must be a list, got {_kind(events)}")
        # Anything a hostile line makes the rebuild raise is that line's fault, whatever its type.
        try:
            log = reply_log(saved, system)
        except KeyError as exc:
            raise ValueError(f"{where} has no {_said(exc)}") from None
        except Exception as exc:
            raise ValueError(f"{where}: {type(exc).__name__}: {_said(exc)}") from None
        for seq, item in enumerate(events):
            if not isinstance(item, dict):
                raise ValueError(f"{where}.events[{seq}] must be an object, got {_kind(item)}")
            try:
                log.add(number, item)
            except KeyError as exc:
                raise ValueError(f"{where}.events[{seq}] has no {_said(exc)}") from None
            except Exception as exc:
                raise ValueError(f"{where}.events[{seq}]: {type(exc).__name__}: {_said(exc)}") from None
        logs.append((log, names))
    try:  # each reply with its own names: a row's turns may have run two versions of the app
        return [reply for log, names in logs
                for reply in replay(EventLog({"system": system, "node_names": names}, [log]))]
    except Exception as exc:
        raise ValueError(f"'replies' do not replay: {type(exc).__name__}: {_said(exc)}") from None


def _header_fragment(line: str) -> bool:
    """Whether a line that is not JSON is the start of a header cut short (a crash at the first write)."""
    text = line.strip()
    return HEADER_START.startswith(text) or text.startswith(HEADER_START)


def _encode(item: dict[str, Any]) -> tuple[str, bytes]:
    """The line, and its bytes: UTF-8, or all escaped when it holds a lone surrogate (a hostile
    answer's "\\ud800"), which UTF-8 cannot carry and an escape round-trips."""
    line = json.dumps(item, ensure_ascii=False, default=str) + "\n"
    try:
        return line, line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(item, default=str) + "\n"
        return line, line.encode("ascii")


# -- the lock ----------------------------------------------------------------------------------------
# flock from the standard library: one call on each side, no package needed for it. Locks belong
# to an open file, so two runs in one process exclude each other as two processes do.
if sys.platform == "win32":  # pragma: no cover - no fcntl: runs are coordinated within one process only
    _held: dict[str, threading.Lock] = {}

    def _try_lock(fd: int, path: Path, exclusive: bool) -> bool:
        lock = _held.setdefault(str(path.resolve()), threading.Lock())
        return lock.acquire(blocking=False) if exclusive else not lock.locked()

    def _unlock(fd: int, path: Path, exclusive: bool) -> None:
        if exclusive:
            _held[str(path.resolve())].release()
else:
    import fcntl

    def _try_lock(fd: int, path: Path, exclusive: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int, path: Path, exclusive: bool) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class Cache:
    """Rows by key. Read when made; written only by a run holding the file's lock (open_run)."""

    def __init__(self, path: str | Path, system: str | None) -> None:
        """`system=None`: read an existing cache as whatever system wrote it."""
        self.path = Path(path)
        self.system = system
        self.rows: dict[str, CachedRow] = {}
        self.skipped: list[str] = []  # "file:line: why" of each line skipped by the last read
        self.has_header = False
        self._seen: tuple[int, int] | None = None  # (inode, size) when last read: has it grown since?
        self._fd: int | None = None  # the run's: open for appends, holding the exclusive lock
        if system is None and not (self.path.exists() and self.path.stat().st_size):
            raise FileNotFoundError(f"no evaluation cache at {self.path}")
        if system is not None:
            self.path.open("a").close()  # here, not mid-run: a path that cannot be written fails evaluate()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            shared = _try_lock(fd, self.path, exclusive=False)
            try:
                self._read(in_progress=not shared)
            finally:
                if shared:
                    _unlock(fd, self.path, exclusive=False)
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------------------------
    def _read(self, in_progress: bool = False) -> None:
        """Every line, each bounded: a big cache never sits whole in memory. `in_progress`: a run
        elsewhere holds the lock, so a last line without its newline is being written, not torn."""
        stat = self.path.stat()
        self._seen = (stat.st_ino, stat.st_size)
        rows: dict[str, CachedRow] = {}
        skipped: list[str] = []
        fragments: list[tuple[int, str]] = []  # lines before the header that are not JSON
        header = False
        for number, line in log_lines(self.path, errors="surrogateescape"):
            where = f"{self.path}:{number}"
            why: str | None = None
            try:
                line.encode("utf-8")  # undecodable bytes came in as lone surrogates
                item = json.loads(line)
            except UnicodeEncodeError:
                why = "not UTF-8 text"
            except (ValueError, RecursionError):
                if in_progress and not line.endswith("\n"):
                    continue
                why = "not JSON (cut short by a crash?)"
            if why is not None:
                if header:
                    skipped.append(f"{where}: {why}")
                else:
                    fragments.append((number, line))
                continue
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "header":
                self._take_header(item, where)
                header = True
                continue
            if not header:
                raise ValueError(f"{where}: {self._wrong(item)} before any header line; was this file written "
                                 "by evaluate(cache=...)?")
            if kind != "row":
                skipped.append(f"{where}: {self._wrong(item)}")
                continue
            try:
                key = item.get("key")
                if not isinstance(key, str) or not key:
                    raise ValueError(f"'key' must be a non-empty string, got {_kind(key)}")
                record = _check_record(item.get("record"))
            except ValueError as exc:
                skipped.append(f"{where}: {exc}")
                continue
            try:
                rows[key] = CachedRow(key, record, _rebuild(item.get("replies"), self.system, number), number)
            except ValueError as exc:
                problem = f"{where}: {exc}"
                rows[key] = CachedRow(key, record, [], number, problem=problem)
                skipped.append(problem)
        if not header and fragments and not all(_header_fragment(f) for _, f in fragments):
            raise ValueError(f"{self.path}: no header line; was it written by evaluate(cache=...)?")
        if not header and self.system is None:
            raise ValueError(f"{self.path}: no header line, so no row to read (its first write was cut short?)")
        if header:
            skipped[:0] = [f"{self.path}:{number}: not JSON, before the header" for number, _ in fragments]
        self.rows, self.skipped, self.has_header = rows, skipped, header

    def _wrong(self, item: Any) -> str:
        """What is wrong with a line that is JSON but neither a header nor a row."""
        if not isinstance(item, dict):
            return f"not a JSON object but {_kind(item)}"
        if "type" not in item:
            return "a JSON object with no 'type' (each line is a header or a row)"
        if item["type"] == "row":
            return "a row"
        return f"unknown line type {item['type']!r:.40} (each line is a header or a row)"

    def _take_header(self, item: dict[str, Any], where: str) -> None:
        if item.get("format") != FORMAT:
            raise ValueError(f"{where}: not an {FORMAT} cache")
        if not isinstance(item.get("version"), int) or item["version"] > VERSION:
            raise ValueError(f"{where}: cache version {item.get('version')!r:.40} is newer than this package "
                             "reads; upgrade atomemo-notebook")
        if self.system is None:
            self.system = str(item.get("system"))
        if item.get("system") != self.system:
            raise ValueError(f"{self.path} holds {str(item.get('system'))[:40]} runs, not {self.system}'s: "
                             "use another cache file")
        try:
            translator_for(self.system)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def warn(self, then: str, skipped: list[str] | None = None, stacklevel: int = 3) -> None:
        """One warning naming the lines that could not be read (file:line: why), if any."""
        lines = self.skipped if skipped is None else skipped
        if lines:
            more = f"\n  ... and {len(lines) - WARN_LINES} more" if len(lines) > WARN_LINES else ""
            warnings.warn(CacheWarning(f"{self.path}: {len(lines)} line(s) could not be read ({then}):\n  "
                                       + "\n  ".join(lines[:WARN_LINES]) + more), stacklevel=stacklevel)

    # -- a run: the only writer --------------------------------------------------------------------
    async def open_run(self, stopping: Callable[[], bool], waiting: Callable[[str | None], None]) -> bool:
        """Take the file's exclusive lock for a run (waiting while another run holds it, saying so
        through `waiting`, until `stopping()`), read again what was appended meanwhile, and write
        the header if there is none. False: stopped before the lock was free."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd, self.path, exclusive=True):
                waiting(f"another evaluation is writing {self.path.name}; its rows are not asked twice")
                while not _try_lock(fd, self.path, exclusive=True):
                    if stopping():
                        os.close(fd)
                        return False
                    await asyncio.sleep(LOCK_POLL)  # flock cannot be awaited; a wait in a thread could not be stopped
                waiting(None)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        stat = os.fstat(fd)
        if (stat.st_ino, stat.st_size) != self._seen:  # another run wrote since: what it asked is not asked twice
            before = set(self.skipped)
            await asyncio.to_thread(self._read)
            self.warn(ASKED_AGAIN, [s for s in self.skipped if s not in before], stacklevel=2)
        if not self.has_header:
            self._write(_encode({"type": "header", "format": FORMAT, "version": VERSION, "system": self.system,
                                 "created_at": format_datetime(datetime.now(timezone.utc))})[1])
            self.has_header = True
        return True

    def close_run(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _unlock(fd, self.path, exclusive=True)
            finally:
                os.close(fd)

    def _write(self, data: bytes) -> None:
        """One whole line, on a line of its own: after a torn one, a newline first. Only under
        the run's lock, so nothing else writes between the check and the write."""
        fd = self._fd
        if fd is None:
            raise RuntimeError("the evaluation cache is written only during a run (open_run)")
        end = os.fstat(fd).st_size
        if end:
            os.lseek(fd, end - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                data = b"\n" + data
        written = 0
        try:
            while written < len(data):  # O_APPEND: each write lands at the end; a short one is finished
                written += os.write(fd, data[written:])
        except BaseException:
            if written:
                os.ftruncate(fd, end)  # all or nothing: a line the disk took only part of is taken back
            raise

    def store(self, key: str, record: dict[str, Any], replies: list[Reply]) -> None:
        item = {"type": "row", "key": key, "record": record,
                "replies": [reply_item(r) for r in replies]}
        line, data = _encode(item)
        if len(line) > _replay.MAX_LINE:  # a line the reader would refuse is not written
            warnings.warn(CacheWarning(f"{self.path}: row {record.get('row')} is too big to cache "
                                       f"({len(line):,} characters); a rerun asks it again"), stacklevel=2)
            return
        self._write(data)
        self.rows[key] = CachedRow(key, record, replies)
