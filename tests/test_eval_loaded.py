"""An evaluation read back (a resumed run's cached rows, load_evaluation() of its cache or of its
Parquet file) names each node exactly as the live run did, for every system: Atomemo's and
Pipelit's events carry node ids only, their names come from the app's description, and those
must survive the trip through the file. Over loopback against the embedded server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from atomemo_notebook import compare, connect, contains, demo_dataset, evaluate, load_evaluation
from atomemo_notebook.server import LocalServer
from atomemo_notebook.session._runtime import submit

ROWS = demo_dataset("support")[:3]


def run(server: LocalServer, system: str, rows: list[dict[str, Any]], cache: Path) -> Any:
    chat = connect(system, asynchronous=True, **server.demo(system, "support"))
    try:
        return evaluate(chat, rows, query="question", scorers=[contains], cache=cache).wait(60, bar=False)
    finally:
        submit(chat.close()).result(10)  # on the loop it ran on; Pipelit's socket closes with it


def names(results: Any) -> dict[str, list[str]]:
    """Each row's node names, in timeline order, by the row's key."""
    keys = [r["key"] for r in results.records]
    out: dict[str, list[str]] = {key: [] for key in keys}
    for record in results.timeline_records():
        if record["kind"] == "node":
            out[keys[record["row"]]].append(record["node_name"])
    return out


def timed_in(results: Any) -> dict[str, int]:
    """Each node with a duration (OdysseyAI reports none) -> how many rows ran it."""
    rows: dict[str, set[int]] = {}
    for record in results.timeline_records():
        if record["kind"] == "node" and record["duration_ms"] is not None:
            rows.setdefault(record["node_name"], set()).add(record["row"])
    return {name: len(ran) for name, ran in rows.items()}


def node_rows(results: Any) -> list[tuple[Any, ...]]:
    return sorted((r["name"], r["runs"], r["failed"], r["p50_ms"], r["p95_ms"])
                  for r in results.summary_records() if r["kind"] == "node")


@pytest.mark.parametrize("system", ["atomemo", "pipelit", "dify", "odyssey"])
def test_a_loaded_or_resumed_run_names_each_node_as_the_live_run_did(server, tmp_path, system):
    cache = tmp_path / f"{system}-{uuid.uuid4().hex[:6]}.jsonl"
    live = run(server, system, ROWS[:2], cache)
    assert (live.df["status"] == "succeeded").all(), live.df[["status", "error"]]
    live_names = names(live)
    assert all(live_names.values()), live_names  # each row ran nodes: there is something to name
    assert bool(timed_in(live)) == (system != "odyssey")  # durations to pair, where the system gives them
    from_cache = load_evaluation(cache)
    from_parquet = load_evaluation(live.to_parquet(tmp_path / f"{system}.parquet"))
    for loaded in (from_cache, from_parquet):
        assert names(loaded) == live_names
        assert node_rows(loaded) == node_rows(live)  # the same nodes, each once, the same numbers
        changes = compare(live, loaded).node_changes()
        assert dict(zip(changes["node"], changes["rows"], strict=True)) == timed_in(live)  # every node paired
        assert (changes["change_ms"] == 0).all()

    resumed = run(server, system, ROWS, cache)  # two rows from the cache, the third asked
    assert resumed.df["cached"].tolist() == [True, True, False]
    resumed_names = names(resumed)
    asked = resumed_names.pop(resumed.records[2]["key"])
    assert resumed_names == live_names
    summary = resumed.summary()
    nodes = summary[summary["kind"] == "node"]["name"].tolist()
    assert sorted(nodes) == sorted({*(n for r in live_names.values() for n in r), *asked})  # none doubled


def test_a_cache_written_before_names_were_kept_still_loads_its_nodes_named_by_id(server, tmp_path):
    cache = tmp_path / "old.jsonl"
    live = run(server, "atomemo", ROWS[:1], cache)
    lines = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    for line in lines[1:]:
        for reply in line["replies"]:
            assert reply.pop("node_names")  # what this version writes, taken away
    cache.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    loaded = load_evaluation(cache).timeline_df
    assert loaded["node_name"].tolist() == live.timeline_df["node_id"].tolist() != live.timeline_df["node_name"].tolist()
