"""Records: 100k messages to a DataFrame. Ours (`to_dataframe(history_records(tree))`, with UTC
datetime columns) against `pd.DataFrame(list_of_dicts, columns=...)` on the same dicts.

    python bench/records.py [--messages 100000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

import pandas as pd

from atomemo_notebook import HISTORY_COLUMNS, Message, history_records, to_dataframe
from atomemo_notebook.model.tree import MessageTree

from _common import best, machine, table


def synthetic(n: int) -> MessageTree:
    tree = MessageTree()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    parent = None
    for i in range(n):
        tree.add_server(Message(id=f"m{i}", status="succeeded", query=f"q{i}", answer=f"a{i}",
                                execution_id=f"x{i}", dialogue_count=i + 1, user_id="u", source="api",
                                parent_id=parent, conversation_id="c",
                                created_at=start + timedelta(seconds=i), updated_at=start + timedelta(seconds=i)))
        parent = f"m{i}"
    return tree



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 messages, best of 3: a report for CI")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = 20_000, 3
    tree = synthetic(args.messages)
    records = history_records(tree)
    columns = list(HISTORY_COLUMNS)
    baseline = best(lambda: pd.DataFrame(records, columns=columns), args.rounds)
    ours = best(lambda: to_dataframe(records, HISTORY_COLUMNS), args.rounds)
    with_records = best(lambda: to_dataframe(history_records(tree), HISTORY_COLUMNS), args.rounds)
    frame = to_dataframe(records, HISTORY_COLUMNS)
    assert str(frame["created_at"].dt.tz) == "UTC" and len(frame) == args.messages
    rows = [
        ("pd.DataFrame(list_of_dicts, columns=...)", baseline, 1.0),
        ("to_dataframe(records) (UTC datetimes)", ours, ours / baseline),
        ("history_records(tree) + to_dataframe", with_records, with_records / baseline),
    ]
    print(f"records: {args.messages:,} messages to a DataFrame; best of {args.rounds}; {machine()}")
    print(table(["method", "seconds", "time ratio to baseline"], rows))
    verdict = "met" if ours / baseline <= 1.2 else "MISSED"
    print(f"SUMMARY records: to_dataframe takes {ours / baseline:.2f}x the plain constructor's time "
          f"({ours:.3f} s for {args.messages:,} rows; target <= 1.2x: {verdict})")


if __name__ == "__main__":
    main()
