"""Records and DataFrames: stable columns, UTC datetimes, 100k rows, the extra named."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from atomemo_notebook import HISTORY_COLUMNS, TIMELINE_COLUMNS, Message, history_records, to_dataframe
from atomemo_notebook.model.tree import MessageTree


def synthetic_tree(n: int) -> MessageTree:
    """n messages: a main line with a regenerated sibling every tenth message."""
    tree = MessageTree()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    parent = None
    for i in range(n):
        branch = i % 10 == 9
        message = Message(
            id=f"m{i}", status="succeeded", query=f"question {i}", answer=f"answer {i}",
            execution_id=f"x{i}", dialogue_count=1, user_id="u", source="api",
            parent_id=tree[f"m{i - 1}"].parent_id if branch else parent, conversation_id="c",
            created_at=start + timedelta(seconds=i), updated_at=start + timedelta(seconds=i, milliseconds=5),
        )
        tree.add_server(message)
        if not branch:
            parent = message.id
    return tree


def test_history_columns_are_stable_and_tree_aware():
    rows = history_records(synthetic_tree(30))
    assert all(tuple(row) == HISTORY_COLUMNS for row in rows)
    by_id = {r["message_id"]: r for r in rows}
    assert by_id["m9"]["parent_id"] == by_id["m8"]["parent_id"] == "m7"
    assert (by_id["m8"]["sibling_index"], by_id["m9"]["sibling_index"]) == (0, 1)
    assert by_id["m9"]["sibling_count"] == 2 and by_id["m0"]["depth"] == 0
    assert by_id["m8"]["depth"] == by_id["m9"]["depth"] == 8


def test_100k_messages_to_a_dataframe_with_utc_datetimes():
    # Correctness at scale only: the speed of this is measured in bench/records.py (rule: no seconds here).
    tree = synthetic_tree(100_000)
    rows = history_records(tree)
    frame = to_dataframe(rows, HISTORY_COLUMNS)
    assert list(frame.columns) == list(HISTORY_COLUMNS) and len(frame) == 100_000
    assert isinstance(frame["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame["created_at"].iloc[5] == pd.Timestamp("2026-01-01 00:00:05", tz="UTC")
    assert (frame["sibling_index"] == 1).sum() == 10_000


def test_empty_records_still_have_the_columns():
    frame = to_dataframe([], TIMELINE_COLUMNS)
    assert list(frame.columns) == list(TIMELINE_COLUMNS) and len(frame) == 0


def test_missing_pandas_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match=r"atomemo-notebook\[pandas\]"):
        to_dataframe([], HISTORY_COLUMNS)
