"""An evaluation kept as one Parquet file: the results table as real columns (for pandas,
DuckDB, a warehouse), plus each row's exact record and its replies' raw events as JSON, so
load_evaluation() rebuilds everything offline, timelines included, through the system's own
adapter. pyarrow is an optional extra (`pip install 'atomemo-notebook[parquet]'`)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model._replay import MAX_LINE
from ..protocol._files import write_atomic
from ..protocol._systems import SYSTEMS
from ._cache import _check_record, _rebuild, _said, reply_item
from ._inputs import MAX_REPEATS, MAX_ROWS, EvalRow

if TYPE_CHECKING:
    from ._results import EvalResults

__all__ = ["FORMAT", "MAX_PARQUET_BYTES", "is_parquet", "read_parquet", "write_parquet"]

FORMAT = "atomemo-notebook/evaluation+parquet"
VERSION = 1
MAX_PARQUET_BYTES = 4 * 1024 ** 3  # a file to load: bounded like every input
MAGIC = b"PAR1"


def _pyarrow() -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError("results.to_parquet() and loading a .parquet evaluation need pyarrow: "
                          "pip install 'atomemo-notebook[parquet]'") from None
    return pyarrow


def is_parquet(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts as Parquet does (so a JSON Lines cache is never mistaken for one)."""
    with open(path, "rb") as file:
        return file.read(4) == MAGIC


def _cell(value: Any) -> Any:
    """A table cell: numbers, text, booleans and null as they are; anything else as its JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def write_parquet(results: EvalResults, path: str | os.PathLike[str]) -> Path:
    pa = _pyarrow()
    with results._lock:
        records, replies = list(results.records), list(results.replies)
    frame_columns = list(results.df.columns)
    columns: dict[str, list[Any]] = {name: [] for name in frame_columns}
    columns["_record"], columns["_replies"] = [], []
    for record, turns in zip(records, replies, strict=True):
        for name in frame_columns:
            columns[name].append(_cell(record.get(name)))
        columns["_record"].append(json.dumps(record, ensure_ascii=False, default=str))
        columns["_replies"].append(json.dumps([reply_item(r) for r in turns], ensure_ascii=False, default=str))
    arrays = {}
    for name, values in columns.items():
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:  # a column of mixed kinds is kept as text
            values = [None if v is None else str(v) for v in values]
        arrays[name] = pa.array(values)
    meta = {"format": FORMAT, "version": str(VERSION), "system": results.system, "repeats": str(results.repeats)}
    table = pa.table(arrays).replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    buffer = io.BytesIO()
    pa.parquet.write_table(table, buffer)
    return write_atomic(path, buffer.getvalue())


def _meta(table: Any, path: str | os.PathLike[str]) -> str:
    """The system whose runs the file holds, from its metadata; a ValueError names what is wrong."""
    saved = table.schema.metadata or {}
    meta: dict[str, str] = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in saved.items()}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is Parquet, but not an evaluation saved by results.to_parquet()")
    version = meta.get("version", "")
    if not (version.isascii() and version.isdigit() and len(version) < 6) or int(version) > VERSION:
        raise ValueError(f"{path}: evaluation file version {version!r:.40} is not one this package reads "
                         f"(up to {VERSION}); upgrade atomemo-notebook")
    system = meta.get("system", "")
    if system not in SYSTEMS:  # no default here: to_parquet() always names it
        raise ValueError(f"{path} holds runs of system {system!r:.40}; this package reads {', '.join(SYSTEMS)}")
    if "_record" not in table.column_names or "_replies" not in table.column_names:
        raise ValueError(f"{path} lacks the _record and _replies columns that rebuild an evaluation")
    if table.num_rows > MAX_ROWS * MAX_REPEATS:
        raise ValueError(f"{path}: {table.num_rows:,} rows is more than one evaluation asks "
                         f"({MAX_ROWS * MAX_REPEATS:,})")
    return system


def _row(number: int, record: dict[str, Any], repeated: bool) -> EvalRow:
    # The record is checked (_check_record): row and repeat are whole numbers in their bounds.
    return EvalRow(index=number, key=str(record.get("key", number)), query=str(record.get("query", "")), inputs={},
                   expected=record.get("expected"), conversation=record.get("conversation"), file=None,
                   data=dict(record), repeat=int(record.get("repeat", 0)),
                   row=int(record.get("row", 0)) if repeated else None)


def read_parquet(path: str | os.PathLike[str]) -> tuple[str, list[EvalRow], list[dict[str, Any]], list[list[Any]]]:
    """(system, rows, records, replies) of a saved evaluation; a ValueError names the file, and
    the row when one is wrong, whatever its cells hold."""
    pa = _pyarrow()
    size = os.path.getsize(path)
    if size > MAX_PARQUET_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is more than an evaluation file may hold ({MAX_PARQUET_BYTES:,})")
    try:
        table = pa.parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {_said(exc)}") from None
    system = _meta(table, path)
    try:
        saved, saved_replies = table.column("_record").to_pylist(), table.column("_replies").to_pylist()
    except Exception as exc:  # a column of a type pyarrow cannot give as Python values is the file's fault
        raise ValueError(f"{path}: its _record and _replies columns do not read: {type(exc).__name__}: "
                         f"{_said(exc)}") from None
    records: list[dict[str, Any]] = []
    replies: list[list[Any]] = []
    for number, (text, turns) in enumerate(zip(saved, saved_replies, strict=True)):
        if not isinstance(text, str) or not isinstance(turns, str):
            raise ValueError(f"{path}: row {number}: _record and _replies must be text (JSON), got "
                             f"{type(text).__name__} and {type(turns).__name__}")
        if max(len(text), len(turns)) > MAX_LINE:
            raise ValueError(f"{path}: row {number}: more than {MAX_LINE:,} characters to read")
        try:
            record = _check_record(json.loads(text))
            rebuilt = _rebuild(json.loads(turns), system, number)
        except RecursionError:
            raise ValueError(f"{path}: row {number}: JSON nested too deeply") from None
        except ValueError as exc:  # json.JSONDecodeError is one
            raise ValueError(f"{path}: row {number}: {exc}") from None
        records.append(record)
        replies.append(rebuilt)
    repeated = any("repeat" in r for r in records)
    return system, [_row(i, r, repeated) for i, r in enumerate(records)], records, replies
