"""What an evaluation asks: a DataFrame, a list of strings or a list of dicts, made into rows
with a stable key (the row's content, so a rerun finds what a cache already holds) and the
multi-turn scripts a `conversation` column groups them into."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_REPEATS", "MAX_ROWS", "EvalRow", "group_scripts", "repeat_rows", "rows_from"]

MAX_ROWS = 100_000  # rows of one evaluation
MAX_REPEATS = 100  # asks of one row


@dataclasses.dataclass(frozen=True)
class EvalRow:
    index: int  # its position in the input
    key: str  # its content's hash (plus its occurrence among identical rows)
    query: str
    inputs: dict[str, Any]
    expected: Any
    conversation: str | None  # rows sharing one are asked in order, in one conversation
    file: str | bytes | None  # sent before the query, in the same conversation
    data: dict[str, Any]  # the whole input row, for scorers
    repeat: int = 0  # which ask of the row this is, when each row is asked more than once
    row: int | None = None  # the input row it repeats (None: `index`, asked once)

    @property
    def number(self) -> int:
        """The input row's number, whichever repeat this is."""
        return self.index if self.row is None else self.row


def _records(data: Any) -> list[Any]:
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame, without importing pandas
        return list(data.to_dict("records"))
    if isinstance(data, str | bytes) or not isinstance(data, Iterable):
        raise TypeError("evaluate() takes a DataFrame, a list of strings or a list of dicts")
    return list(data)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # None or NaN (pandas' empty cell)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def rows_from(data: Any, *, query: str = "query", expected: str = "expected", inputs: str = "inputs",
              conversation: str = "conversation", file: str = "file") -> list[EvalRow]:
    """Rows, each checked: a clear error names the first bad one, before anything is asked."""
    records = _records(data)
    if len(records) > MAX_ROWS:
        raise ValueError(f"{len(records):,} rows; one evaluation asks at most {MAX_ROWS:,}")
    rows: list[EvalRow] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        item: dict[str, Any] = {query: record} if isinstance(record, str) else dict(record) \
            if isinstance(record, Mapping) else {}
        if not item:
            raise TypeError(f"row {index}: expected a string or a dict, got {type(record).__name__}")
        text = item.get(query)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"row {index}: {query!r} must be a non-empty string, got {text!r}")
        given = item.get(inputs)
        trigger = {} if _missing(given) else given
        if not isinstance(trigger, dict):
            raise ValueError(f"row {index}: {inputs!r} must be a dict of trigger inputs, got {type(given).__name__}")
        group = item.get(conversation)
        script = None if _missing(group) else _text(group)
        attached = item.get(file)
        attached = None if _missing(attached) else attached
        if attached is not None and not isinstance(attached, str | bytes | os.PathLike):
            raise ValueError(f"row {index}: {file!r} must be a path or bytes")
        content = json.dumps({"q": text, "i": trigger, "c": script, "f": _text(os.fspath(attached))
                              if isinstance(attached, os.PathLike) else _text(attached) if attached else None},
                             sort_keys=True, default=str)
        digest = hashlib.sha256(content.encode()).hexdigest()[:24]
        seen[digest] = seen.get(digest, 0) + 1
        rows.append(EvalRow(index=index, key=f"{digest}:{seen[digest]}", query=text, inputs=dict(trigger),
                            expected=None if _missing(item.get(expected)) else item.get(expected),
                            conversation=script,
                            file=os.fspath(attached) if isinstance(attached, os.PathLike) else attached,
                            data=item))
    return rows


def repeat_rows(rows: list[EvalRow], repeats: int) -> list[EvalRow]:
    """Each row `repeats` times, all rows once before any twice (so a stopped run has seen every
    row); each repeat its own conversation and its own cache key, so a resumed run asks only the
    repeats that are missing. The first repeat keeps the row's key: a cache of a run asked once
    is the first repeat of the same run asked k times."""
    if not isinstance(repeats, int) or isinstance(repeats, bool) or not 1 <= repeats <= MAX_REPEATS:
        raise ValueError(f"repeats must be a whole number from 1 to {MAX_REPEATS}, got {repeats!r}")
    if repeats * len(rows) > MAX_ROWS:
        raise ValueError(f"{len(rows)} rows x {repeats} repeats is more than {MAX_ROWS:,} asks")
    if repeats == 1:
        return rows
    return [dataclasses.replace(row, index=r * len(rows) + row.index, repeat=r, row=row.index,
                                key=row.key if r == 0 else f"{row.key}~{r}",
                                conversation=None if row.conversation is None or r == 0 else f"{row.conversation}~{r}")
            for r in range(repeats) for row in rows]


def group_scripts(rows: list[EvalRow]) -> list[list[EvalRow]]:
    """Units of work: a row alone, or every row of one conversation in input order."""
    groups: dict[str, list[EvalRow]] = {}
    units: list[list[EvalRow]] = []
    for row in rows:
        if row.conversation is None:
            units.append([row])
        elif row.conversation in groups:
            groups[row.conversation].append(row)
        else:
            groups[row.conversation] = [row]
            units.append(groups[row.conversation])
    return units
