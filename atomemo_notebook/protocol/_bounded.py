"""What a reply may keep of what a server sent: bounded previews of any JSON value, and a
bound on the values a JSON text may make before it is parsed at all.

Bytes on the wire are bounded by `Limits.body`, `Limits.event` and `Limits.line`; parsed,
they grow: `{}` is 2 bytes of JSON and 64 bytes of Python. Two bounds close that gap:

* `check_values`: a JSON text whose values (objects, arrays, numbers, strings) could number
  more than `Limits.json_values` is refused before it is parsed (counted at C speed from its
  commas and brackets outside strings), so parsing one answer or event peaks near
  `json_values` Python objects, whatever its shape.
* `Keeper`: a reply's share of memory (`Limits.reply_memory`). Each value a reply keeps (raw
  event data, node inputs and outputs, tool arguments and results, notes) is copied within
  what is left of the share; past it, strings are cut, containers shortened and deep nesting
  replaced, each cut marked in place by a string that starts with `CUT` and says how much
  was left out. Every walk is iterative: no input can raise RecursionError here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from ._errors import LimitExceededError
from ._wire import Event, MalformedFrame

__all__ = ["CUT", "MAX_DEPTH", "MAX_ITEMS", "Keeper", "check_values", "count_values", "deep_size", "guarded",
           "is_cut"]

CUT = "\u2026[cut: "  # every marker of something left out starts with this
MAX_DEPTH = 48  # containers nested deeper are replaced by a marker
MAX_ITEMS = 100_000  # items of one list or object kept; the rest counted in a marker
MIN_STRING = 200  # characters of a string kept even when the share is spent
SMALL_NODES = 32  # a value with at most this many items in all is kept as it is
SMALL_STRING = 1024  # characters of a string kept as it is
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_STRING_B = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_getsizeof = sys.getsizeof


def is_cut(value: Any) -> bool:
    """True for a marker of left-out content (or a string cut short, which ends with one)."""
    return isinstance(value, str) and CUT in value


def count_values(text: str | bytes) -> int:
    """An upper bound on the values parsing `text` as JSON makes (never fewer): outside
    strings, every value but the first of a container follows a comma, and every non-empty
    container holds a first one, so values = commas + brackets opened - empty pairs + 1.
    Never parses, never copies: strings are stepped over one match at a time."""
    if isinstance(text, bytes):
        return _count(text, _STRING_B, b",", b"[", b"{", b"[]", b"{}")
    return _count(text, _STRING, ",", "[", "{", "[]", "{}")


def _count(text: Any, strings: re.Pattern[Any], comma: Any, bracket: Any, brace: Any, brackets: Any,
           braces: Any) -> int:
    count = text.count
    total, pos = 1, 0
    for match in strings.finditer(text):
        start, end = match.span()
        if start > pos:
            total += (count(comma, pos, start) + count(bracket, pos, start) + count(brace, pos, start)
                      - count(brackets, pos, start) - count(braces, pos, start))
        pos = end
    rest: int = (count(comma, pos) + count(bracket, pos) + count(brace, pos)
                 - count(brackets, pos) - count(braces, pos))
    return total + rest


def _quick_bound(text: str | bytes) -> int:
    if isinstance(text, bytes):
        return text.count(b",") + text.count(b"[") + text.count(b"{") + 1
    return text.count(",") + text.count("[") + text.count("{") + 1


def check_values(text: str | bytes, limit: int, what: str = "a JSON answer") -> None:
    """Raise LimitExceededError("json_values") when `text` could make more than `limit` values.
    Cheap for the common case: a text shorter than the limit cannot exceed it."""
    if len(text) <= limit or _quick_bound(text) <= limit:
        return
    count = count_values(text)
    if count > limit:
        raise LimitExceededError("json_values", limit,
                                 f"{what} of {len(text):,} characters holds about {count:,} JSON values "
                                 f"(limit Limits.json_values={limit:,}); it was not parsed")


_EXECUTION_ID = re.compile(r'"execution_id"\s*:\s*"([^"\\]{1,200})"')
PREVIEW = 2000  # characters of a refused frame kept


def guarded(parse: Callable[[str], Event], limit: int) -> Callable[[str], Event]:
    """`parse` (one frame's text -> an Event, never raising) made safe for any text: a frame
    that could make more than `limit` JSON values, or is nested past the parser's depth, is
    not parsed; it becomes a MalformedFrame with a preview of its text, its size and why (and
    the execution id its envelope names, if the preview shows one), so the stream goes on."""

    def refused(text: str, error: str) -> Event:
        data: dict[str, Any] = {"raw": text[:PREVIEW], "error": error, "size": len(text)}
        found = _EXECUTION_ID.search(text, 0, 4 * PREVIEW)
        if found is not None:
            data["execution_id"] = found.group(1)
        return MalformedFrame(MalformedFrame.NAME, data)

    def parse_within(text: str) -> Event:
        if len(text) > limit:
            try:
                check_values(text, limit, "a stream event")
            except LimitExceededError as exc:
                return refused(text, exc.message)
        try:
            return parse(text)
        except RecursionError:
            return refused(text, f"a frame of {len(text):,} characters is nested too deep to parse")

    return parse_within


def deep_size(value: Any) -> int:
    """Bytes of `value` and everything it holds, each object once (sys.getsizeof; iterative)."""
    seen: set[int] = set()
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += _getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__slots__") and not isinstance(item, str | bytes | int | float):
            stack.extend(getattr(item, name) for name in _slots(type(item)) if hasattr(item, name))
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.append(vars(item))
    return total


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return names


def _small(value: Any) -> bool:
    """True for a small plain JSON value: at most SMALL_NODES items in all, strings of at
    most SMALL_STRING characters (iterative; stops at the first sign it is not)."""
    if type(value) is not dict and type(value) is not list:
        return False
    if len(value) == 1 and type(value) is dict:  # most events' data (a text chunk): no walk
        for only in value.values():
            if type(only) is str:
                return len(only) <= SMALL_STRING
    budget = SMALL_NODES
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= len(item)
        if budget < 0:
            return False
        for child in item.values() if type(item) is dict else item:
            cls = type(child)
            if cls is str:
                if len(child) > SMALL_STRING:
                    return False
            elif cls is dict or cls is list:
                stack.append(child)
            elif child is not None and cls is not int and cls is not float and cls is not bool:
                return False
    return True


def _cut_string(text: str, keep: int) -> tuple[str, int]:
    """`text` cut to `keep` characters and a marker; the characters left out."""
    left = len(text) - keep
    return f"{text[:keep]}{CUT}{left:,} more characters]", left


class Keeper:
    """The share of memory one reply keeps of what the server sent, spent value by value.

    `keep(value)` returns `value` itself when it is small and plain, else a copy within what is
    left of the share (at most `per_value` of it, so one huge output cannot starve the rest)."""

    def __init__(self, budget: int, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> None:
        self.budget = budget
        self.left = budget
        self.per_value = max(budget // 4, 4096)
        self.max_depth = max_depth
        self.max_items = max_items
        self.cut_values = 0  # values (strings, containers, items) shortened or left out
        self.cut_chars = 0  # characters of strings left out

    @property
    def spent(self) -> bool:
        return self.left <= 0

    def charge(self, nbytes: int) -> None:
        """Count memory kept outside `keep` (a record, a span)."""
        self.left -= nbytes

    def keep_text(self, text: str, cap: int | None = None) -> str:
        """A string within the share (an error, a note, a name): cut with a marker past it."""
        room = max(min(self.left, self.per_value if cap is None else cap), MIN_STRING)
        if len(text) <= room:
            self.left -= _getsizeof(text)
            return text
        kept, left = _cut_string(text, room)
        self.cut_values += 1
        self.cut_chars += left
        self.left -= _getsizeof(kept)
        return kept

    def keep(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        """A bounded copy of JSON `value`, or `value` itself when it is small and plain (at
        most SMALL_NODES items in all, strings of at most SMALL_STRING characters: a bound of
        its own, so small values are neither charged nor cut and an event log stays whole).
        `memo` maps the id of a container already kept to its copy: kept once, shared."""
        if value is None or value is True or value is False:
            return value
        cls = type(value)
        if cls is str:
            return value if len(value) <= SMALL_STRING else self.keep_text(value)
        if cls is int or cls is float:
            return value
        if _small(value):
            return value
        if memo is not None and id(value) in memo:
            return memo[id(value)]
        copy = self._copy(value, memo)
        if memo is not None:
            memo[id(value)] = copy
        return copy

    def _copy(self, value: Any, memo: dict[int, Any] | None) -> Any:
        """Depth-first, iterative: each container's copy is made when it is reached, and its
        items appended as they are reached, so the walk stops where the share ends."""
        room = min(max(self.left, 0), self.per_value)
        start_room = room
        root: list[Any] = []
        # (source items iterator, destination, is_dict, depth, items still in source)
        stack: list[tuple[Any, Any, bool, int, int]] = []

        def place(dest: Any, is_dict: bool, key: Any, item: Any) -> None:
            nonlocal room
            room -= 8 if not is_dict else 16 + (_getsizeof(key) if len(key) > 20 else 0)  # its slot
            if is_dict:
                dest[key] = item
            else:
                dest.append(item)

        def visit(dest: Any, is_dict: bool, key: Any, item: Any, depth: int) -> None:
            nonlocal room
            if item is None or isinstance(item, bool | int | float):
                room -= 0 if item is None or isinstance(item, bool) else _getsizeof(item)
                place(dest, is_dict, key, item)
            elif isinstance(item, str):
                if len(item) + 49 <= room or len(item) <= MIN_STRING:
                    room -= _getsizeof(item)
                    place(dest, is_dict, key, item)
                else:
                    kept, left = _cut_string(item, max(room - 120, MIN_STRING) if room > 0 else MIN_STRING)
                    self.cut_values += 1
                    self.cut_chars += left
                    room -= _getsizeof(kept)
                    place(dest, is_dict, key, kept)
            elif memo is not None and id(item) in memo:
                place(dest, is_dict, key, memo[id(item)])
            elif isinstance(item, dict | list | tuple):
                kind = "an object" if isinstance(item, dict) else "a list"
                if depth >= self.max_depth:
                    self.cut_values += 1
                    marker = f"{CUT}{kind} of {len(item):,} items nested past depth {self.max_depth}]"
                    room -= _getsizeof(marker)
                    place(dest, is_dict, key, marker)
                    return
                child: Any = {} if isinstance(item, dict) else []
                room -= _getsizeof(child)
                place(dest, is_dict, key, child)
                items = iter(item.items()) if isinstance(item, dict) else iter(item)
                stack.append((items, child, isinstance(item, dict), depth + 1, len(item)))
            else:
                text = str(item)
                room -= _getsizeof(text)
                place(dest, is_dict, key, text[:MIN_STRING])

        visit(root, False, None, value, 0)
        while stack:
            items, dest, is_dict, depth, total = stack[-1]
            if room <= 0 or len(dest) >= self.max_items:
                stack.pop()
                left = total - len(dest)
                if left > 0:
                    self.cut_values += left
                    marker = f"{CUT}{left:,} more {'keys' if is_dict else 'items'}]"
                    room -= _getsizeof(marker)
                    if is_dict:
                        dest[CUT.strip()] = marker
                    else:
                        dest.append(marker)
                continue
            try:
                entry = next(items)
            except StopIteration:
                stack.pop()
                continue
            if is_dict:
                key, item = entry
                key = key if isinstance(key, str) and len(key) <= 256 else f"{str(key)[:256]}{CUT}key]"
                visit(dest, True, key, item, depth)
            else:
                visit(dest, False, None, entry, depth)
        self.left -= start_room - room
        return root[0]
