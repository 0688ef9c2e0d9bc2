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
from ._cache import _check_record, _rebuild, reply_item
from ._inputs import EvalRow

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


def read_parquet(path: str | os.PathLike[str]) -> tuple[str, list[EvalRow], list[dict[str, Any]], list[list[Any]]]:
    """(system, rows, records, replies) of a saved evaluation; a ValueError names what is wrong."""
    pa = _pyarrow()
    size = os.path.getsize(path)
    if size > MAX_PARQUET_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is more than an evaluation file may hold ({MAX_PARQUET_BYTES:,})")
    try:
        table = pa.parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (table.schema.metadata or {}).items()}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is Parquet, but not an evaluation saved by results.to_parquet()")
    if "_record" not in table.column_names or "_replies" not in table.column_names:
        raise ValueError(f"{path} lacks the _record and _replies columns that rebuild an evaluation")
    system = meta.get("system") or None
    saved, saved_replies = table.column("_record").to_pylist(), table.column("_replies").to_pylist()
    records: list[dict[str, Any]] = []
    replies: list[list[Any]] = []
    for number, (text, turns) in enumerate(zip(saved, saved_replies, strict=True)):
        if not isinstance(text, str) or not isinstance(turns, str) or max(len(text), len(turns)) > MAX_LINE:
            raise ValueError(f"{path}: row {number} has no record, or one too big to read")
        try:
            record = _check_record(json.loads(text))
            rebuilt = _rebuild(json.loads(turns), system, number)
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: row {number}: {exc}") from None
        records.append(record)
        replies.append(rebuilt)
    repeated = any("repeat" in r for r in records)
    rows = [EvalRow(index=i, key=str(r.get("key", i)), query=str(r.get("query", "")), inputs={},
                    expected=r.get("expected"), conversation=r.get("conversation"), file=None, data=dict(r),
                    repeat=int(r.get("repeat", 0)), row=int(r.get("row", 0)) if repeated else None)
            for i, r in enumerate(records)]
    return str(system), rows, records, replies
