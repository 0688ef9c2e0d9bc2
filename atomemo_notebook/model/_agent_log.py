"""An agent node's log as a tree (Dify's `agent_log`: each entry an `id`, a `parent_id`, a
`label`, a `status` and its `data`, sent again as it changes). Entries are kept flat in the
order they first came, bounded in number; the tree is read from them by one iterative walk
that no server's parent ids can send into a loop: an entry whose parent never came is a root,
a cycle is broken where the walk finds it, and depth is capped for display. Written here
because it is a bounded pre-order over parent links, which no library offers for
hostile input."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "AgentLog", "AgentLogEntry"]

MAX_ENTRIES = 2_000  # entries one agent run keeps; the rest are counted
MAX_DEPTH = 32  # nesting shown; deeper entries are shown at this depth, their real one kept


@dataclasses.dataclass
class AgentLogEntry:
    id: str
    parent_id: str | None
    label: str
    status: str  # start | success | error (Dify's), as sent
    data: Any = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None


class AgentLog:
    """One agent run's log entries, by id, in the order they first came."""

    def __init__(self) -> None:
        self.entries: dict[str, AgentLogEntry] = {}
        self.dropped = 0  # entries past MAX_ENTRIES, not kept

    def __len__(self) -> int:
        return len(self.entries)

    def update(self, entry_id: str, parent_id: str | None, label: str, status: str, data: Any,
               error: str | None, at: float) -> str | None:
        """Add an entry or update the one with its id; what is wrong with it, if anything. An
        entry keeps the parent it came with: a later frame cannot move it (nor make a cycle of it)."""
        known = self.entries.get(entry_id)
        if known is None:
            if len(self.entries) >= MAX_ENTRIES:
                self.dropped += 1
                return f"agent log entries past {MAX_ENTRIES:,} were left out" if self.dropped == 1 else None
            problem = None
            if parent_id == entry_id:
                parent_id, problem = None, f"agent log entry {entry_id[:80]!r} names itself as its parent"
            self.entries[entry_id] = AgentLogEntry(entry_id, parent_id, label, status, data, error, started=at,
                                                   finished=None if status == "start" else at)
            return problem
        known.status, known.label = status, label or known.label
        if data is not None:
            known.data = data
        if error is not None:
            known.error = error
        if status != "start":
            known.finished = at
        return None

    def tree(self) -> list[tuple[AgentLogEntry, int]]:
        """Every entry once, in pre-order, with its depth (capped at MAX_DEPTH). Roots are the
        entries whose parent is absent, in arrival order; entries left over (a cycle of
        parents) become roots where the cycle is first met."""
        children: dict[str, list[str]] = {}
        roots: list[str] = []
        for entry in self.entries.values():
            if entry.parent_id is not None and entry.parent_id in self.entries:
                children.setdefault(entry.parent_id, []).append(entry.id)
            else:
                roots.append(entry.id)
        out: list[tuple[AgentLogEntry, int]] = []
        seen: set[str] = set()
        for start in [*roots, *self.entries]:
            if start in seen:
                continue
            stack = [(start, 0)]
            while stack:
                entry_id, depth = stack.pop()
                if entry_id in seen:
                    continue
                seen.add(entry_id)
                out.append((self.entries[entry_id], min(depth, MAX_DEPTH)))
                stack.extend((kid, depth + 1) for kid in reversed(children.get(entry_id, ())))
        return out

    def records(self) -> list[dict[str, Any]]:
        """The tree as plain rows (records, the widget's node details)."""
        return [{"id": e.id, "parent_id": e.parent_id, "label": e.label, "status": e.status, "data": e.data,
                 "error": e.error, "depth": depth} for e, depth in self.tree()]

    def text(self, value_chars: int = 500) -> str:
        """The tree as indented plain text, each entry's data cut at `value_chars`."""
        lines = []
        for entry, depth in self.tree():
            data = "" if entry.data is None else json.dumps(entry.data, ensure_ascii=False, default=str)
            if len(data) > value_chars:
                data = data[:value_chars] + "…"
            error = f" error: {entry.error}" if entry.error else ""
            lines.append(f"{'  ' * depth}• {entry.label} [{entry.status}]{error}{' ' + data if data else ''}")
        if self.dropped:
            lines.append(f"… and {self.dropped:,} more entries, not kept")
        return "\n".join(lines)
