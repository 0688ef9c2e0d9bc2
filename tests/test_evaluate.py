"""Batch evaluation over loopback against the embedded server: hundreds of rows at bounded
concurrency with the server's own 429 and dropped-stream faults, none lost and none asked
twice; a resumed run asks only what did not finish (counted on the server); scorers that
raise; scripts of several turns; per-row deadlines; the cache replayed offline."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from atomemo_notebook import (
    AsyncChat,
    AsyncClient,
    compare,
    compare_nodes,
    contains,
    demo_dataset,
    evaluate,
    exact,
    latency_under,
    load_evaluation,
    regex,
)
from atomemo_notebook.evaluation._inputs import rows_from
from atomemo_notebook.server import LocalServer

from .conftest import wait_until


class Faulty:
    """Adds the server's own fault header to some chat POSTs (by query text or by count)."""

    def __init__(self, every_429: int = 0, every_drop: int = 0, by_query: dict[str, str] | None = None) -> None:
        self.posts = 0
        self.refused = 0  # 429s injected
        self.every_429, self.every_drop = every_429, every_drop
        self.by_query = by_query or {}
        self.sent_at: list[float] = []
        self.queries: list[Any] = []  # in the order sent, as sent_at
        self._lock = threading.Lock()

    async def __call__(self, request: httpx.Request) -> None:
        if request.method != "POST" or not request.url.path.endswith("/chat/messages"):
            return
        with self._lock:
            self.posts += 1
            n = self.posts
        self.sent_at.append(time.monotonic())
        query = json.loads(request.content).get("query")
        self.queries.append(query)
        fault = self.by_query.pop(query, None) if isinstance(query, str) else None  # once per query
        if fault is None and self.every_429 and n % self.every_429 == 0:
            fault = "status=429; retry_after=0.05"
            self.refused += 1
        elif fault is None and self.every_drop and n % self.every_drop == 0:
            fault = "drop_after=3"
        if fault:
            request.headers["X-Atomemo-Fault"] = f"{fault}; key={uuid.uuid4().hex}"


def chat(server: LocalServer, slug: str, user: str, hook: Faulty | None = None) -> AsyncChat:
    http = httpx.AsyncClient(event_hooks={"request": [hook]} if hook else {})
    api = AsyncClient(server.api_key, base_url=server.base_url, http_client=http, max_retries=4)
    app = server.app(slug)
    return AsyncChat(api, app_id=app["app_id"], trigger_id=app["trigger_id"], user_id=user)


def server_messages(server: LocalServer, slug: str, user: str) -> list[dict[str, Any]]:
    store = server.asgi_app.state.emulator.store
    app = server.app(slug)
    return [m for c in store.list_conversations(app["app_id"], app["trigger_id"], user) for m in store.messages(c["id"])]


def test_two_hundred_rows_with_429s_and_drops_none_lost_none_twice(server):
    user = f"eval-{uuid.uuid4().hex[:8]}"
    hook = Faulty(every_429=9, every_drop=7)
    questions = [f"question number {i} " + "x" * (i % 40) for i in range(200)]
    results = evaluate(chat(server, "echo", user, hook), questions, scorers=[exact], concurrency=8, row_timeout=60)
    results.wait(120, bar=False)
    df = results.df
    assert len(df) == 200 and df["row"].tolist() == list(range(200))
    assert set(df["status"]) <= {"succeeded", "failed"}
    assert df[df["status"] == "failed"]["error"].notna().all()  # a failure says why
    lost = df[df["status"] != "succeeded"][["row", "status", "error"]].to_dict("records")
    assert not lost, (lost, hook.posts, hook.refused)  # which row, and why: seen once in ~90 runs
    assert (df["answer"] == df["query"]).all()
    stored = server_messages(server, "echo", user)
    assert len(stored) == 200 and sorted(m["query"] for m in stored) == sorted(questions)  # none twice
    assert hook.refused >= 20 and hook.posts == 200 + hook.refused  # every 429 was asked again, nothing else was
    progress = results.progress()
    assert progress["done"] == 200 and progress["finished"] and progress["running"] == 0


def test_a_429_pauses_every_worker_until_its_retry_after(server):
    hook = Faulty(by_query={"first": "status=429; retry_after=0.6"})
    base = chat(server, "echo", f"pause-{uuid.uuid4().hex[:8]}", hook)
    results = evaluate(base, ["first", *[f"other {i}" for i in range(6)]], concurrency=4)
    results.wait(60, bar=False)
    assert (results.df["status"] == "succeeded").all()
    refused_at = hook.sent_at[0]
    # Nothing was sent in the pause the 429 asked for: the workers that started with it
    # went first; every later request waited until the pause ended.
    later = list(hook.sent_at[4:])
    assert later and min(later) >= refused_at + 0.5
    # ... and the refused one went first when it ended, before the requests that were only
    # paused (it woke last before, so a server refusing by arrival order could refuse it again).
    after = [q for q, at in zip(hook.queries, hook.sent_at, strict=True) if at >= refused_at + 0.5]
    assert after[0] == "first" and hook.queries.count("first") == 2


def test_stop_keeps_finished_rows_and_a_rerun_asks_only_the_rest(server, tmp_path):
    user = f"resume-{uuid.uuid4().hex[:8]}"
    cache = tmp_path / "eval.jsonl"
    questions = [f"resume row {i}" for i in range(30)]
    slow = dict.fromkeys(questions, "stall=1; stall_after=2")  # a second a row
    first = evaluate(chat(server, "echo", user, Faulty(by_query=slow)), questions, concurrency=2, cache=cache)
    wait_until(lambda: first.progress()["done"] >= 4, 60)
    first.stop()
    first.wait(60, bar=False)
    finished = set(first.df[first.df["status"] == "succeeded"]["row"])
    assert 4 <= len(finished) < 30 and set(first.df["status"]) <= {"succeeded", "stopped", "not run"}
    # The rerun asks as another user: the server's count of its messages is then exactly what
    # it was asked (a stopped row of the first run may still finish on the server meanwhile).
    again = f"{user}-again"
    hook = Faulty()
    second = evaluate(chat(server, "echo", again, hook), questions, concurrency=4, cache=cache)
    second.wait(60, bar=False)
    assert (second.df["status"] == "succeeded").all()
    assert hook.posts == 30 - len(finished)  # only what had not finished was asked again
    assert len(server_messages(server, "echo", again)) == 30 - len(finished)
    assert set(second.df[second.df["cached"]]["row"]) == finished
    # The cache alone rebuilds everything offline: answers, timelines.
    offline = load_evaluation(cache)
    assert len(offline.df) == 30 and (offline.df["answer"] == offline.df["query"]).all()
    assert len(offline.timeline_df) == len(second.timeline_df)


def test_rerun_failed_asks_the_failed_rows_again(server, tmp_path):
    user = f"rerun-{uuid.uuid4().hex[:8]}"
    cache = tmp_path / "eval.jsonl"
    rows = ["Is the blue mug in stock?", "Check the inventory and fail"]
    first = evaluate(chat(server, "flaky", user), rows, cache=cache)
    first.wait(60, bar=False)
    assert first.df["status"].tolist() == ["succeeded", "failed"]
    assert first.df["failed_node"].tolist()[1] == "Fetch inventory"
    again = Faulty()
    evaluate(chat(server, "flaky", user, again), rows, cache=cache).wait(60, bar=False)
    assert again.posts == 0  # a failure is a result too, unless asked otherwise
    evaluate(chat(server, "flaky", user, again), rows, cache=cache, rerun_failed=True).wait(60, bar=False)
    assert again.posts == 1


def test_scorers_that_raise_are_recorded_in_their_row(server):
    def picky(row: dict[str, Any], reply: Any) -> float:
        if "boom" in row["query"]:
            raise RuntimeError("cannot score this")
        return len(reply.text) / 100

    def parts(row: dict[str, Any], reply: Any) -> dict[str, Any]:
        return {"words": len(reply.text.split()), "upper": reply.text.isupper()}

    data = [{"query": "fine answer", "expected": "fine"}, {"query": "boom goes this", "expected": "nope"}]
    results = evaluate(chat(server, "echo", "scorer-user"), data,
                       scorers=[picky, parts, contains, regex(r"\w+ answer"), exact, latency_under(60)])
    results.wait(60, bar=False)
    df = results.df
    assert df["status"].tolist() == ["succeeded", "succeeded"]
    assert df["score_picky"].tolist()[0] == pytest.approx(0.11) and df["score_picky"].isna().tolist()[1]
    assert df["score_errors"].isna().tolist()[0] and "RuntimeError: cannot score this" in df["score_errors"][1]
    assert df["score_parts_words"].tolist() == [2, 3] and df["score_contains"].tolist() == [True, False]
    assert df["score_regex"].tolist() == [True, False] and df["score_exact"].tolist() == [False, False]
    means = results.summary().set_index("name")["mean"]
    assert means["contains"] == 0.5 and means["all rows"] == 1.0


def test_conversation_scripts_run_in_order_in_one_conversation(server):
    data = [{"query": "script A one", "conversation": "A"}, {"query": "alone"},
            {"query": "script A two", "conversation": "A"}, {"query": "script A three", "conversation": "A"}]
    results = evaluate(chat(server, "echo", "script-user"), data, concurrency=3)
    results.wait(60, bar=False)
    df = results.df.set_index("row")
    script = df.loc[[0, 2, 3]]
    assert script["conversation_id"].nunique() == 1 and df.loc[1, "conversation_id"] not in set(script["conversation_id"])
    replies = [results.replies[i][-1] for i in (0, 2, 3)]
    assert replies[1].parent_id == replies[0].message_id and replies[2].parent_id == replies[1].message_id


def test_a_row_past_its_deadline_fails_saying_so_and_the_rest_go_on(server):
    hook = Faulty(by_query={"stuck": "stall=30; stall_after=2"})
    results = evaluate(chat(server, "echo", "deadline-user", hook), ["stuck", "quick one"], row_timeout=1.5)
    results.wait(60, bar=False)
    df = results.df.set_index("query")
    assert df.loc["stuck", "status"] == "failed" and "timeout of 1.5 s" in df.loc["stuck", "error"]
    assert df.loc["quick one", "status"] == "succeeded"


def test_compare_two_runs_per_row_and_per_node(server):
    rows = demo_dataset("flaky")
    a = evaluate(chat(server, "flaky", "cmp-a"), rows, query="question", scorers=[contains])
    b = evaluate(chat(server, "support", "cmp-b"), rows, query="question", scorers=[contains])
    a.wait(60, bar=False)
    b.wait(60, bar=False)
    table = compare(a, b)
    assert len(table) == len(rows) and table["answer_changed"].all()
    assert {"score_contains_a", "score_contains_b", "latency_ratio"} <= set(table.columns)
    assert (table["status_a"] == "failed").sum() == sum("fail" in r["question"] for r in rows)
    nodes = compare_nodes(a, b).set_index("node")
    assert nodes.loc["Fetch inventory", "failed_a"] > 0 and nodes.loc["Fetch inventory", "runs_b"] == 0


def test_bad_input_is_refused_before_anything_is_asked(server):
    base = chat(server, "echo", "refused")
    with pytest.raises(ValueError, match="row 1: 'query' must be a non-empty string"):
        evaluate(base, [{"query": "ok"}, {"query": ""}])
    with pytest.raises(ValueError, match="concurrency"):
        evaluate(base, ["a"], concurrency=0)
    with pytest.raises(ValueError, match="concurrency"):
        evaluate(base, ["a"], concurrency=10_000)
    with pytest.raises(TypeError, match="DataFrame"):
        evaluate(base, "just a string")
    with pytest.raises(TypeError, match="scorer must be callable"):
        evaluate(base, ["a"], scorers=["contains"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="'inputs' must be a dict"):
        rows_from([{"query": "a", "inputs": "tone=dry"}])


def test_rows_are_keyed_by_content_and_a_dataframe_works():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"question": ["a", "b", "a"], "expected": ["x", None, "x"]})
    rows = rows_from(frame, query="question")
    assert [r.key.split(":")[1] for r in rows] == ["1", "1", "2"]  # identical rows stay two rows
    assert rows[0].key.split(":")[0] == rows[2].key.split(":")[0] != rows[1].key.split(":")[0]
    assert rows[1].expected is None  # pandas' empty cell


def test_the_demo_dataset_covers_every_app_and_a_known_failure():
    rows = demo_dataset()
    assert {r["app"] for r in rows} == {"support", "agent", "flaky", "echo"} and len(rows) >= 30
    assert any("fail" in r["question"] for r in demo_dataset("flaky"))
    with pytest.raises(ValueError, match="no demo questions"):
        demo_dataset("martian")


def test_a_damaged_line_of_a_cache_is_skipped_by_name_and_another_systems_cache_refused(server, tmp_path):
    from atomemo_notebook.evaluation._cache import CacheWarning

    cache = tmp_path / "eval.jsonl"
    evaluate(chat(server, "echo", "cache-user"), ["one", "two"], cache=cache).wait(60, bar=False)
    text = cache.read_text()
    cache.write_text(text + '{"type": "row", "key": "torn')  # a crash mid-write
    with pytest.warns(CacheWarning, match=r"eval.jsonl:4: not JSON"):
        assert len(load_evaluation(cache).df) == 2
    lines = text.splitlines()
    cache.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.warns(CacheWarning, match=r"eval.jsonl:2: not JSON"):
        assert len(load_evaluation(cache).df) == 2  # the lines after it are read all the same
    cache.write_text(text)
    with pytest.raises(ValueError, match="atomemo runs, not dify's"):
        evaluate("dify", ["x"], cache=cache)


def test_the_results_widget_fills_in_live_and_opens_a_run(server):
    from atomemo_notebook.evaluation._view import EvalWidget
    from atomemo_notebook.views._widget_protocol import EVAL_TRAITS, check

    hook = Faulty(by_query=dict.fromkeys(("Check the inventory and fail", "fail twice"), "stall=1; stall_after=2"))
    results = evaluate(chat(server, "flaky", "widget-eval", hook), ["Is the blue mug in stock?",
                                                                   "Check the inventory and fail", "fail twice"],
                       scorers=[contains], concurrency=1)
    widget = EvalWidget(results)
    sent: list[Any] = []
    widget.send = sent.append  # type: ignore[method-assign]
    wait_until(lambda: widget.progress["done"] >= 1 and not widget.progress["finished"], 30)
    assert widget.progress["total"] == 3  # live, while rows still run
    results.wait(60, bar=False)
    wait_until(lambda: widget.progress["finished"] and widget.progress["done"] == 3, 10)
    for name, shape in EVAL_TRAITS.items():
        check(getattr(widget, name), shape, name)
    assert [r["status"] for r in widget.rows] == ["succeeded", "failed", "failed"]
    assert widget.rows[1]["failed_node"] == "Fetch inventory" and widget.score_columns == ["contains"]
    widget.selected = 1  # a click on the row
    detail = widget.detail
    assert detail["row"] == 1 and detail["turns"][0]["status"] == "failed"
    (timeline,) = detail["timelines"]
    assert [n["name"] for n in timeline["nodes"] if n["status"] == "failed"] == ["Fetch inventory", "Fetch inventory"]
    widget.close()


def test_stop_from_the_widget_stops_the_evaluation(server):
    from atomemo_notebook.evaluation._view import EvalWidget

    slow = {f"slow {i}": "stall=2; stall_after=2" for i in range(10)}
    results = evaluate(chat(server, "echo", "widget-stop", Faulty(by_query=slow)), list(slow), concurrency=2)
    widget = EvalWidget(results)
    wait_until(lambda: results.progress()["running"] == 2, 30)
    widget._on_msg(widget, {"type": "stop"}, [])  # the Stop button
    results.wait(30, bar=False)
    statuses = results.df["status"].tolist()
    assert statuses.count("stopped") == 2 and statuses.count("not run") == 8
    widget.close()


@pytest.mark.parametrize("system", ["atomemo", "dify", "pipelit", "odyssey"])
def test_every_system_evaluates_the_same_way(system, monkeypatch):
    for name in ("API_KEY", "BASE_URL"):
        monkeypatch.delenv(f"{system.upper()}_{name}", raising=False)
    from atomemo_notebook import connect

    rows = [{"query": f"{system} row {i}", "expected": f"row {i}"} for i in range(6)]
    from atomemo_notebook.session._runtime import submit

    chat = connect(system, demo="echo", asynchronous=True)
    results = evaluate(chat, rows, scorers=[contains], concurrency=3)
    results.wait(60, bar=False)
    submit(chat.close()).result(10)  # on the loop it ran on; Pipelit's socket closes with it
    df = results.df
    assert (df["status"] == "succeeded").all() and df["score_contains"].all(), df[["status", "error"]]
    assert (df["answer"] == df["query"]).all() and len(results.timeline_df) >= 6


def test_a_row_with_a_file_sends_it_first_in_the_same_conversation(server, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("some notes")
    results = evaluate(chat(server, "echo", "file-user"), [{"query": "what is in the file?", "file": str(path)}])
    results.wait(60, bar=False)
    (replies,) = results.replies
    assert [type(r.query).__name__ for r in replies] == ["FileRef", "str"]
    assert replies[1].parent_id == replies[0].message_id and results.df["status"].tolist() == ["succeeded"]


def test_the_text_bar_and_ctrl_c(server, capsys, monkeypatch):
    slow = {f"bar {i}": "stall=1; stall_after=2" for i in range(4)}
    results = evaluate(chat(server, "echo", "bar-user", Faulty(by_query=dict(slow))), list(slow), concurrency=1)
    calls = {"n": 0}
    real_wait = results._done.wait

    def interrupted(timeout: float | None = None) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C while waiting
            raise KeyboardInterrupt
        return real_wait(timeout)

    monkeypatch.setattr(results._done, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        results.wait(bar=True)
    monkeypatch.setattr(results._done, "wait", real_wait)
    wait_until(lambda: results.finished, 30)
    statuses = results.df["status"].tolist()
    assert "stopped" in statuses or "not run" in statuses  # stopped, and the finished rows kept
    assert statuses.count("succeeded") < 4
    err = capsys.readouterr().err
    assert "/4 done" in err and "rows/s" in err and err.endswith("\n")
