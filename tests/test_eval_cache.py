"""The evaluation cache against damage and company: a line torn by a crash, rows of the wrong
shape, garbage, a disk that takes half a line, a second process writing the same file, and a
run whose own machinery fails. Nothing is lost (every row is loaded or asked again, and the
file stays readable), nothing hangs (every wait has a deadline), and every complaint names the
file and line. Asks are counted at the embedded server, never timed."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from atomemo_notebook import AsyncChat, AsyncClient, evaluate, load_evaluation
from atomemo_notebook.evaluation._cache import Cache, CacheWarning
from atomemo_notebook.server import LocalServer

from .conftest import wait_until

ROWS = [f"cache row {i} · ünïcødé ✓" for i in range(6)]  # multi-byte text: a cut can fall inside a character


class Count:
    """Counts the chat POSTs a client sends (each is one ask of the server)."""

    def __init__(self) -> None:
        self.posts = 0
        self._lock = threading.Lock()

    async def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/chat/messages"):
            with self._lock:
                self.posts += 1


def chat(server: LocalServer, user: str, count: Count | None = None, slug: str = "echo") -> AsyncChat:
    http = httpx.AsyncClient(event_hooks={"request": [count]} if count else {})
    api = AsyncClient(server.api_key, base_url=server.base_url, http_client=http, max_retries=2)
    app = server.app(slug)
    return AsyncChat(api, app_id=app["app_id"], trigger_id=app["trigger_id"], user_id=user)


def server_asks(server: LocalServer, user: str, slug: str = "echo") -> int:
    store = server.asgi_app.state.emulator.store
    app = server.app(slug)
    return sum(len(store.messages(c["id"])) for c in store.list_conversations(app["app_id"], app["trigger_id"], user))


def fresh_cache(server: LocalServer, path: Path, rows: list[str] = ROWS) -> str:
    evaluate(chat(server, f"seed-{uuid.uuid4().hex[:8]}"), rows, cache=path).wait(60, bar=False)
    return path.read_text(encoding="utf-8")


def run(server: LocalServer, path: Path, rows: list[str] = ROWS) -> tuple[Any, int, list[str]]:
    """evaluate() over the cache, bounded in time: its results, asks sent, and warnings."""
    count = Count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = evaluate(chat(server, f"run-{uuid.uuid4().hex[:8]}", count), rows, cache=path)
        results.wait(60, bar=False)  # a hang fails here, as a TimeoutError
    return results, count.posts, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def offline(path: Path) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = load_evaluation(path)
    return results, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def assert_complete(path: Path, rows: list[str] = ROWS) -> None:
    """The file reads back whole, with no complaint: every row, succeeded, its answer."""
    results, complaints = offline(path)
    df = results.df
    assert complaints == []
    assert sorted(df["query"]) == sorted(rows) and (df["status"] == "succeeded").all()
    assert (df["answer"] == df["query"]).all()


def assert_names_lines(path: Path, complaints: list[str]) -> None:
    """Every line a warning lists says file:line: what."""
    for complaint in complaints:
        head, *listed = complaint.split("\n")
        assert head.startswith(f"{path}: ") and listed, complaint
        for entry in listed:
            named = entry.startswith(f"  {path}:") and entry.split(f"{path}:")[1].split(":")[0].isdigit()
            assert named or entry.strip().startswith("... and"), complaint


# -- 1: a torn line ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cut", [1, 2, 7, 40])  # bytes cut off the end: its newline only, or into the last row
def test_a_run_after_a_torn_last_line_appends_on_a_fresh_line_and_asks_that_row_again(server, tmp_path, cut):
    path = tmp_path / "eval.jsonl"
    text = fresh_cache(server, path)
    data = text.encode()
    path.write_bytes(data[: len(data) - cut])  # a crash mid-write
    torn = len(text.splitlines())  # the torn row's line
    second, asked, complaints = run(server, path)
    assert (second.df["status"] == "succeeded").all()
    if cut > 1:  # its row is gone from the cache: asked again, once, and the warning says which line
        assert asked == 1 and complaints and f"{path}:{torn}: not JSON" in complaints[0]
    else:  # only the newline was lost: the row is whole, and the next line still starts on its own
        assert asked == 0 and complaints == []
    third, asked_again, _ = run(server, path)
    assert asked_again == 0 and third.df["cached"].all()  # the row asked again was kept this time
    results, left = offline(path)
    assert (results.df["status"] == "succeeded").all() and sorted(results.df["query"]) == sorted(ROWS)
    assert_names_lines(path, left)


def test_a_torn_line_in_the_middle_is_skipped_by_name_and_the_rest_is_read(server, tmp_path):
    path = tmp_path / "eval.jsonl"
    lines = fresh_cache(server, path).splitlines(keepends=True)
    lines[3] = lines[3][: len(lines[3]) // 2]  # line 4 torn, then written after on the same line: two rows in one
    path.write_text("".join(lines), encoding="utf-8")
    results, complaints = offline(path)
    assert len(results.df) == len(ROWS) - 2 and f"{path}:4: not JSON" in complaints[0]
    again, asked, _ = run(server, path)
    assert asked == 2 and (again.df["status"] == "succeeded").all()
    assert_names_lines(path, complaints)


def test_a_header_cut_short_is_written_again_and_load_says_there_is_nothing(server, tmp_path):
    path = tmp_path / "eval.jsonl"
    header = fresh_cache(server, path).splitlines()[0]
    path.write_text(header[:30], encoding="utf-8")  # the very first write torn
    with pytest.raises(ValueError, match=rf"{path}: no header line"):
        load_evaluation(path)
    results, asked, complaints = run(server, path)
    assert asked == len(ROWS) and (results.df["status"] == "succeeded").all() and complaints == []
    results, complaints = offline(path)
    assert len(results.df) == len(ROWS)
    assert complaints and f"{path}:1: not JSON, before the header" in complaints[0]


def test_a_file_that_is_not_a_cache_is_refused_and_left_alone(server, tmp_path):
    path = tmp_path / "notes.jsonl"
    for content in ("a,b,c\n1,2,3\n", '{"type": "row", "key": "k", "record": {}}\n', "[1, 2]\n"):
        path.write_text(content)
        with pytest.raises(ValueError, match=rf"{path}"):
            evaluate(chat(server, "refused"), ["x"], cache=path)
        assert path.read_text() == content


# -- 2 and 9: lines of the wrong shape ---------------------------------------------------------------

WRONG = [  # (what is done to line 2's JSON, what the warning says)
    (lambda r: r.update(replies=[5]), r"'replies\[0\]' must be an object, got the number 5"),
    (lambda r: r["replies"][0].update(events="abc"), r"'replies\[0\]'.events must be a list, got a string"),
    (lambda r: r.update(record=[]), r"'record' must be an object, got a list"),
    (lambda r: r.update(replies="x"), r"'replies' must be a list, got a string"),
    (lambda r: r.update(key=5), r"'key' must be a non-empty string, got the number 5"),
    (lambda r: r.pop("record"), r"'record' must be an object, got null"),
    (lambda r: r["record"].pop("query"), r"'record' has no 'query'"),
    (lambda r: r["record"].update(status="banana"), r"'record.status' must be one of"),
    (lambda r: r["record"].update(total_s="slow"), r"'record.total_s' must be a whole number or a number or null"),
    (lambda r: r["record"].update(row=True), r"'record.row' must be a whole number, got a boolean"),
    (lambda r: r["replies"][0].pop("query"), r"'replies\[0\]' has no 'query'"),
    (lambda r: r["replies"][0]["events"].__setitem__(0, 7), r"'replies\[0\]'.events\[0\] must be an object"),
    (lambda r: r["replies"][0]["events"][0].pop("event"), r"'replies\[0\]'.events\[0\] has no 'event'"),
    (lambda r: r["replies"][0]["events"][0].update(offset="soon"), r"'replies\[0\]'.events\[0\]: ValueError"),
    (lambda r: r["replies"][0]["events"][0].update(seq=-1), r"'replies\[0\]'.events\[0\]: ValueError: 'seq'"),
    (lambda r: r.pop("type"), r"a JSON object with no 'type'"),
    (lambda r: r.update(type="rwo"), r"unknown line type 'rwo'"),
    (lambda r: r["replies"][0].update(finished="later"), r"'replies\[0\].finished' must be"),
    (lambda r: r["replies"][0].update(query=[1]), r"'replies\[0\].query' must be a string or an object"),
    (lambda r: r["replies"][0].update(node_names=[1]), r"'replies\[0\].node_names' must be an object, got a list"),
    (lambda r: r["replies"][0].update(node_names={"n1": "Reply"}),
     r"'replies\[0\]'.node_names\['n1'\] must be \[name, type\], got a string"),
    (lambda r: r["record"].update(repeat="x"), r"'record.repeat' must be a whole number, got a string"),
    (lambda r: r["record"].update(repeat=100), r"'record.repeat' must be from 0 to 99, got 100"),
    (lambda r: r["record"].update(row=-1), r"'record.row' must be from 0 to 99,999, got -1"),
]


@pytest.mark.parametrize(("damage", "message"), WRONG)
def test_a_row_of_the_wrong_shape_is_asked_again_never_hangs_and_is_named(server, tmp_path, damage, message):
    path = tmp_path / "eval.jsonl"
    lines = fresh_cache(server, path).splitlines()
    row = json.loads(lines[1])
    damage(row)
    lines[1] = json.dumps(row, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results, offline_complaints = offline(path)
    assert offline_complaints and f"{path}:2: " in offline_complaints[0]
    if "'replies" in message and "'key'" not in message:  # record and key fine: the row is there, failed, saying why
        failed = results.df[results.df["status"] == "failed"]
        assert len(failed) == 1 and failed["error"].iloc[0].startswith(f"{path}:2: ")
    again, asked, complaints = run(server, path)
    assert asked == 1 and (again.df["status"] == "succeeded").all()  # that row, and only it, asked again
    assert len(complaints) == 1
    import re

    assert re.search(message, complaints[0]), complaints[0]
    assert_names_lines(path, complaints)
    results, _ = offline(path)  # the line written after it wins: the file reads whole
    assert (results.df["status"] == "succeeded").all() and len(results.df) == len(ROWS)


def test_bytes_that_are_not_utf8_are_that_lines_problem(server, tmp_path):
    path = tmp_path / "eval.jsonl"
    data = fresh_cache(server, path).encode()
    lines = data.split(b"\n")
    lines[2] = lines[2][:20] + b"\xff\xfe" + lines[2][20:]
    path.write_bytes(b"\n".join(lines))
    results, complaints = offline(path)
    assert len(results.df) == len(ROWS) - 1 and f"{path}:3: not UTF-8 text" in complaints[0]


# -- the run's own failures: raised from wait(), shown in the widget ----------------------------------

def test_a_cache_that_cannot_be_written_ends_the_run_with_that_error(server, tmp_path, monkeypatch):
    from atomemo_notebook.evaluation._view import EvalWidget

    path = tmp_path / "eval.jsonl"
    fresh_cache(server, path, ROWS[:1])

    def full(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Cache, "store", full)
    count = Count()
    results = evaluate(chat(server, "disk-full", count), ROWS, cache=path, concurrency=1)
    widget = EvalWidget(results)
    with pytest.raises(OSError, match="No space left on device"):
        results.wait(30, bar=False)
    # The first row that could not be saved ended the run. The next row's request was already out
    # (a row is saved while the next one is asked): it ends stopped, not saved; nothing else asked.
    assert count.posts == 2
    assert results.progress()["error"] == "OSError: [Errno 28] No space left on device"
    wait_until(lambda: widget.progress["error"] == results.progress()["error"], 10, "the widget to show it")
    statuses = results.df["status"].tolist()
    assert statuses[:3] == ["succeeded", "succeeded", "stopped"] and statuses.count("not run") == len(ROWS) - 3
    widget.close()


def test_a_view_that_raises_ends_the_run_with_its_error_not_silently(server):
    count = Count()
    results = evaluate(chat(server, "broken-view", count), ROWS, concurrency=1)

    def broken(changed: Any) -> None:
        if changed.progress()["done"]:
            raise RuntimeError("the view broke")

    results.listeners.append(broken)
    with pytest.raises(RuntimeError, match="the view broke"):
        results.wait(30, bar=False)
    assert results.finished and results.progress()["error"] == "RuntimeError: the view broke"
    # The row whose end broke the view ended the run; the next row's request, already out, stopped.
    statuses = results.df["status"].tolist()
    assert count.posts == 2 and statuses[:2] == ["succeeded", "stopped"]
    assert statuses.count("not run") == len(ROWS) - 2


# -- writes: all or nothing per line -----------------------------------------------------------------

WRITER = textwrap.dedent("""
    import asyncio, json, os, resource, signal, sys
    from atomemo_notebook.evaluation._cache import Cache
    path = sys.argv[1]
    cache = Cache(path, "atomemo")
    asyncio.run(cache.open_run(lambda: False, lambda _: None))
    record = {"query": "q", "status": "succeeded"}
    cache.store("first", record, [])
    size = os.path.getsize(path)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: a write gets part of its line in, then fails
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))
    try:
        cache.store("second", record | {"answer": "x" * 1000}, [])
    except OSError as exc:
        print(json.dumps({"error": str(exc), "size": os.path.getsize(path), "before": size}))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_line_the_disk_takes_only_part_of_is_taken_back(tmp_path):
    path = tmp_path / "eval.jsonl"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=60,
                          check=True)
    out = json.loads(done.stdout)
    assert out["error"] and out["size"] == out["before"]  # not a byte of the line that failed
    cache = Cache(path, None)
    assert list(cache.rows) == ["first"] and cache.skipped == []


def test_a_row_too_big_to_read_back_is_not_written(tmp_path, monkeypatch):
    import asyncio

    from atomemo_notebook.model import _replay as replay_module

    path = tmp_path / "eval.jsonl"
    cache = Cache(path, "atomemo")
    asyncio.run(cache.open_run(lambda: False, lambda _: None))
    monkeypatch.setattr(replay_module, "MAX_LINE", 300)
    with pytest.warns(CacheWarning, match="too big to cache"):
        cache.store("big", {"row": 0, "query": "q", "status": "succeeded", "answer": "x" * 400}, [])
    cache.store("small", {"row": 1, "query": "q", "status": "succeeded"}, [])
    cache.close_run()
    assert list(Cache(path, None).rows) == ["small"]  # readable: the big row is simply asked next time


# -- two processes, one cache ------------------------------------------------------------------------

OTHER_PROCESS = textwrap.dedent("""
    import json, os, sys, httpx
    from atomemo_notebook import AsyncChat, AsyncClient, evaluate
    base_url, app_id, trigger_id, user, cache = sys.argv[1:6]
    rows = json.loads(sys.argv[6])
    posts = 0

    async def hook(request):
        global posts
        if request.method == "POST" and request.url.path.endswith("/chat/messages"):
            posts += 1
            if posts == 3:  # two rows in the cache: hold this one until the test says go
                print("holding", flush=True)
                import asyncio
                await asyncio.to_thread(sys.stdin.readline)

    api = AsyncClient(os.environ["EVAL_TEST_KEY"], base_url=base_url,
                      http_client=httpx.AsyncClient(event_hooks={"request": [hook]}))
    chat = AsyncChat(api, app_id=app_id, trigger_id=trigger_id, user_id=user)
    results = evaluate(chat, rows, cache=cache, concurrency=1)
    results.wait(120, bar=False)
    print(json.dumps({"posts": posts, "statuses": results.df["status"].tolist()}), flush=True)
""")


def test_two_processes_on_one_cache_ask_each_row_once(server, tmp_path):
    path = tmp_path / "shared.jsonl"
    user = f"two-{uuid.uuid4().hex[:8]}"
    rows = [f"shared row {i}" for i in range(12)]
    app = server.app("echo")
    env = os.environ | {"EVAL_TEST_KEY": server.api_key}
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, server.base_url, app["app_id"], app["trigger_id"],
                              user, str(path), json.dumps(rows)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert other.stdout is not None and other.stdin is not None
        assert next_line(other, 60) == "holding"  # it holds the cache, two rows in, a third asked
        count = Count()
        mine = evaluate(chat(server, user, count), rows, cache=path, concurrency=4)
        # Here this run either asks (as it did before the lock) or says it waits for the other.
        wait_until(lambda: count.posts > 0 or mine.progress().get("waiting"), 30, "this run to ask or wait")
        other.stdin.write("go\n")
        other.stdin.flush()
        theirs = json.loads(next_line(other, 120))
        other.wait(30)
        mine.wait(60, bar=False)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait(10)
    assert set(theirs["statuses"]) == {"succeeded"} and (mine.df["status"] == "succeeded").all()
    assert server_asks(server, user) == len(rows)  # counted at the server: no row asked twice
    assert theirs["posts"] + count.posts == len(rows) and mine.df["cached"].all()
    assert_complete(path, rows)


def next_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The process's next line of output, or a clear failure at the deadline (never a hang)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline() if process.stdout else ""),
                     daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        raise AssertionError(f"no line from the other process within {timeout:g} s") from None


def test_a_run_waiting_for_the_lock_can_be_stopped(server, tmp_path):
    fcntl = pytest.importorskip("fcntl")

    path = tmp_path / "held.jsonl"
    fresh_cache(server, path, ROWS[:1])
    with path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another process's run would (never a wait here)
        count = Count()
        results = evaluate(chat(server, "stopped-waiting", count), ROWS, cache=path)
        wait_until(lambda: results.progress()["waiting"], 10, "the run to wait for the lock")
        results.stop()
        results.wait(10, bar=False)
    assert count.posts == 0 and set(results.df["status"]) == {"not run"}


def test_a_cache_changed_to_another_systems_while_waiting_ends_the_run_and_frees_the_lock(server, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / "swapped.jsonl"
    text = fresh_cache(server, path, ROWS[:1])
    with path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        count = Count()
        results = evaluate(chat(server, "swapped", count), ROWS, cache=path)
        wait_until(lambda: results.progress()["waiting"], 10, "the run to wait for the lock")
        path.write_text(text.replace('"system": "atomemo"', '"system": "dify"', 1))  # what the other run left
    with pytest.raises(ValueError, match="holds dify runs, not atomemo's"):
        results.wait(30, bar=False)
    assert count.posts == 0
    with path.open("a") as probe:  # the failed run let the file go
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)


# -- the class of input: any cut, any wrong field, any garbage ------------------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=6)
FIELDS = ["key", "record", "replies", "type", "record.status", "record.query", "record.total_s", "replies.0",
          "replies.0.events", "replies.0.query", "replies.0.events.0", "replies.0.events.0.offset",
          "replies.0.events.0.data", "replies.0.events.0.event", "replies.0.events.0.seq", "replies.0.node_names",
          "record.repeat"]


def _set(item: Any, dotted: str, value: Any) -> None:
    """Set a field by its dotted path; nothing when an earlier damage removed the way to it."""
    *parents, last = dotted.split(".")
    try:
        for part in parents:
            item = item[int(part)] if isinstance(item, list) else item[part]
        if isinstance(item, list):
            item[int(last)] = value
        elif isinstance(item, dict):
            item[last] = value
    except (LookupError, TypeError, ValueError):
        pass


def damage(data: st.DataObject, text: str) -> bytes:
    """A pristine cache, then a few of: a wrong field on a row line, a garbage line, a cut."""
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(0, 3), label="damages")):
        where = data.draw(st.integers(1, len(lines) - 1), label="line")  # after the header, which makes it a cache
        if data.draw(st.booleans(), label="wrong field"):
            try:
                row = json.loads(lines[where])
            except ValueError:
                continue  # garbage put there before
            if isinstance(row, dict) and row.get("type") == "row":
                _set(row, data.draw(st.sampled_from(FIELDS), label="field"), data.draw(JSON_VALUES, label="value"))
                lines[where] = json.dumps(row, ensure_ascii=False) + "\n"
        else:
            garbage = data.draw(st.binary(max_size=40) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                                label="garbage")
            lines.insert(where, garbage.decode("utf-8", "surrogateescape") + "\n")
    blob = "".join(lines).encode("utf-8", "surrogateescape")
    if data.draw(st.booleans(), label="cut"):
        blob = blob[: data.draw(st.integers(0, len(blob)), label="at byte")]
    return blob


@pytest.fixture(scope="module")
def pristine(server: LocalServer) -> str:
    with tempfile.TemporaryDirectory() as folder:
        return fresh_cache(server, Path(folder) / "pristine.jsonl")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_a_damaged_cache_never_hangs_never_stays_unreadable_and_loses_no_row(server, pristine, data):
    blob = damage(data, pristine)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "eval.jsonl"
        path.write_bytes(blob)
        header = pristine.splitlines(keepends=True)[0].encode()
        refused = ""
        try:  # offline: read, every complaint naming file:line, or refused saying which file
            _, complaints = offline(path)
            assert_names_lines(path, complaints)
        except (ValueError, FileNotFoundError) as exc:
            refused = str(exc)
        if refused:  # only when nothing of the header is left whole
            assert str(path) in refused and not blob.startswith(header), refused
        results, asked, complaints = run(server, path)  # never a hang: wait() has its deadline
        df = results.df
        assert df["status"].isin(["succeeded", "failed", "stopped"]).all(), df  # each row loaded or asked again
        fresh = df[~df["cached"]]
        assert asked == len(fresh)  # each asked once, the others from the cache
        assert (fresh["status"] == "succeeded").all() and (fresh["answer"] == fresh["query"]).all()
        assert_names_lines(path, complaints)
        again, asked_again, _ = run(server, path)  # and what was asked again was kept
        assert asked_again == 0 and again.df["cached"].all()
        offline(path)  # the file reads: never left unreadable


# -- the Parquet file: the same reader of records and replies, behind a table ----------------------------

PQ_FIELDS = ["record", "record.row", "record.repeat", "record.key", "record.query", "record.status",
             "record.total_s", "record.expected", "replies", "replies.0", "replies.0.node_names",
             "replies.0.events", "replies.0.events.0", "replies.0.events.0.data", "replies.0.events.0.seq"]
PQ_META = ["format", "version", "system"]
PQ_SLACK = 4096  # characters a row's text may grow by before the bound the fuzz sets
HUGE = st.integers(0, 3 * PQ_SLACK).map(lambda n: "ü" * n)  # past that bound, and short of it


def pq_column(data: st.DataObject, rows: int) -> Any:
    """A column of any type pyarrow writes: numbers, text, bytes, lists, objects, all null."""
    import pyarrow as pa

    kind = data.draw(st.sampled_from(["int", "float", "text", "bytes", "bool", "list", "struct", "null"]), label="type")
    values = {"int": st.integers(-(2**63), 2**63 - 1), "float": st.floats(), "text": st.text(max_size=20) | HUGE,
              "bytes": st.binary(max_size=20), "bool": st.booleans(), "list": st.lists(st.integers(0, 9), max_size=3),
              "struct": st.fixed_dictionaries({"a": st.integers(0, 9)}), "null": st.none()}[kind]
    cells = data.draw(st.lists(st.none() | values, min_size=rows, max_size=rows), label="cells")
    return pa.array(cells, type=pa.null() if kind == "null" else None)


def pq_damage(data: st.DataObject, table: Any) -> tuple[Any, int | None]:
    """The pristine table, then one of: a field of one row's JSON set to anything, a column of
    another type, a column gone, a metadata value changed. The row damaged, if one was."""
    how = data.draw(st.sampled_from(["field", "column", "drop", "meta"]), label="damage")
    name = data.draw(st.sampled_from(["_record", "_replies", "answer"]), label="column")
    if how == "field":
        row = data.draw(st.integers(0, table.num_rows - 1), label="row")
        column = "_record" if (field := data.draw(st.sampled_from(PQ_FIELDS), label="field")).startswith("record") \
            else "_replies"
        cells = table.column(column).to_pylist()
        item = {"record": json.loads(cells[row])} if column == "_record" else {"replies": json.loads(cells[row])}
        _set(item, field, data.draw(JSON_VALUES | HUGE, label="value"))
        cells[row] = json.dumps(item["record" if column == "_record" else "replies"], ensure_ascii=False)
        return table.set_column(table.column_names.index(column), column, [cells]), row
    if how == "column":
        return table.set_column(table.column_names.index(name), name, pq_column(data, table.num_rows)), None
    if how == "drop":
        return table.drop_columns([name]), None
    meta = dict(table.schema.metadata)
    key = data.draw(st.sampled_from(PQ_META), label="key")
    meta[key.encode()] = data.draw(st.text(max_size=8) | HUGE | st.sampled_from(["atomemo", "pipelit", "1", "2"]),
                                   label="meta").encode("utf-8", "surrogatepass")
    return table.replace_schema_metadata(meta), None


RECORD = {"row": 0, "key": "k", "status": "succeeded", "query": "q"}
HOSTILE_PQ = [  # (its _record cells, _replies cells, metadata changed, what the error says after the file's name)
    ([json.dumps(RECORD | {"repeat": "x"})], ["[]"], {}, r": row 0: 'record.repeat' must be a whole number"),
    ([json.dumps(RECORD), json.dumps(RECORD | {"repeat": -1})], ["[]", "[]"], {}, r": row 1: 'record.repeat' must be"),
    ([json.dumps(RECORD | {"row": 10**9})], ["[]"], {}, r": row 0: 'record.row' must be from 0 to 99,999"),
    (["[" * 100_000], ["[]"], {}, r": row 0: JSON nested too deeply"),
    ([json.dumps(RECORD)], ['[{"query": "q", "status": "succeeded", "node_names": {"n": [1, 2]}}]'], {},
     r": row 0: 'replies\[0\]'.node_names\['n'\] must be \[name, type\]"),
    ([json.dumps(RECORD)], ["[]"], {"system": "nope"}, r" holds runs of system 'nope'; this package reads atomemo"),
    ([json.dumps(RECORD)], ["[]"], {"system": None}, r" holds runs of system ''"),
    ([json.dumps(RECORD)], ["[]"], {"version": "2"}, r": evaluation file version '2' is not one this package reads"),
]


@pytest.mark.parametrize(("records", "replies", "meta", "message"), HOSTILE_PQ)
def test_a_hostile_parquet_record_is_refused_naming_file_and_row(tmp_path, records, replies, meta, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    saved = {"format": "atomemo-notebook/evaluation+parquet", "version": "1", "system": "atomemo"} | meta
    table = pa.table({"_record": records, "_replies": replies}).replace_schema_metadata(
        {k: v for k, v in saved.items() if v is not None})
    path = tmp_path / "hostile.parquet"
    pq.write_table(table, path)
    with pytest.raises(ValueError, match="^" + re.escape(str(path)) + message):
        load_evaluation(path)


@pytest.fixture(scope="module")
def pristine_parquet(server: LocalServer) -> Any:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as folder:
        results = evaluate(chat(server, f"pq-{uuid.uuid4().hex[:8]}"), ROWS[:3], repeats=2).wait(60, bar=False)
        return pq.read_table(results.to_parquet(Path(folder) / "pristine.parquet"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_a_hostile_parquet_file_loads_or_is_refused_naming_file_and_row(pristine_parquet, data):
    import pyarrow.parquet as pq

    from atomemo_notebook.evaluation import _parquet

    table, row = pq_damage(data, pristine_parquet)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        longest = max(len(c or "") for name in ("_record", "_replies") for c in pristine_parquet.column(name).to_pylist())
        patch.setattr(_parquet, "MAX_LINE", longest + PQ_SLACK)  # the bound on a row's text, one a fuzz can pass
        path = Path(folder) / "eval.parquet"
        pq.write_table(table, path)
        refused = ""
        try:
            results = load_evaluation(path)
        except ValueError as exc:
            refused = str(exc)
    if refused:  # a refusal is a ValueError naming the file, and the row when one is wrong; short, whatever it held
        assert refused.startswith(str(path)) and len(refused) < 1000, refused
        assert row is None or f": row {row}: " in refused, refused
        event("refused")
        return
    event("loaded")
    assert len(results.df) == table.num_rows and results.finished  # or it loads, every row of it
    assert set(results.df["status"]) <= {"succeeded", "failed", "stopped"}
    results.summary()


def test_a_missing_pyarrow_is_named_with_its_extra_on_save_and_on_load(server, tmp_path, monkeypatch):
    results = evaluate(chat(server, f"nopq-{uuid.uuid4().hex[:8]}"), ROWS[:1]).wait(60, bar=False)
    saved = results.to_parquet(tmp_path / "saved.parquet")
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"need pyarrow: pip install 'atomemo-notebook\[parquet\]'"):
        results.to_parquet(tmp_path / "new.parquet")
    assert not list(tmp_path.glob("*new.parquet*"))  # nothing written, not even a temporary
    with pytest.raises(ImportError, match=r"need pyarrow: pip install 'atomemo-notebook\[parquet\]'"):
        load_evaluation(saved)
