"""export_html(interactive=True): one self-contained file with the widget's bundle, its styles
and the conversation's data; a policy allowing only that script and stylesheet (by hash); the
key nowhere in it; bounded, the newest turns kept whole. The browser side is in
tests/browser/test_export_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomemo_notebook.server import LocalServer
from atomemo_notebook.views import _export as export

from .conftest import wait_until
from .test_widget import browser, make


def data_of(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="atomemo-data">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


def elements(page: str, tag: str) -> int:
    """How many `tag` elements a browser's parser would see (script contents are text to it)."""
    count = 0

    class Counter(HTMLParser):
        def handle_starttag(self, name: str, attrs: Any) -> None:
            nonlocal count
            count += name == tag

    Counter().feed(page)
    return count


def sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@pytest.fixture
def agent_widget(server: LocalServer):
    widget, _ = make(server, "agent")
    widget.ask("Where is order 1042? I'm in Berlin.").wait()
    widget.ask("<script>alert(1)</script> and </script><img src=x onerror=alert(2)>").wait()
    yield widget
    widget.close()


def test_the_file_holds_the_widget_its_data_and_a_policy_that_allows_only_them(agent_widget, tmp_path):
    page = agent_widget.export_html(tmp_path / "run.html", interactive=True).read_text()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    script = re.search(r'<script type="module">(.*)</script></body>', page, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert f"script-src '{sha(script)}'" in policy and f"style-src '{sha(style)}'" in policy
    assert elements(page, "script") == 2 and "</script" not in script and "<!--" not in script  # none ends early
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing loads from a host
    data = data_of(page)
    turns = data["traits"]["transcript"]["turns"]
    assert len(turns) == 2 and data["left_out"] == 0
    first = turns[0]["id"]
    assert data["traits"]["header"]["read_only"].startswith("Exported on")
    assert data["tapes"][first]["events"] == len(data["events"][first]) > 0
    assert data["details"][first] and data["traits"]["timelines"][first]["nodes"]
    assert data["compares"]  # the Compare tab's first picks, answered ahead


def test_the_payload_cannot_close_its_element(agent_widget, tmp_path):
    page = agent_widget.export_html(tmp_path / "run.html", interactive=True).read_text()
    raw = re.search(r'id="atomemo-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in raw and ">" not in raw
    assert "</script><img src=x onerror=alert(2)>" in json.dumps(data_of(page))  # kept as text


def test_the_key_is_never_in_the_file(server: LocalServer, tmp_path):
    widget, _ = make(server, "support")
    try:
        widget.ask("What is your refund policy?").wait()
        page = widget.export_html(tmp_path / "run.html", interactive=True).read_text()
        assert server.api_key not in page
        assert "Bearer" not in page and "api_key" not in page
    finally:
        widget.close()


def test_a_long_conversation_keeps_its_newest_turns_whole_and_says_what_it_left_out(agent_widget, tmp_path):
    for i in range(3):
        agent_widget.ask(f"Question number {i}").wait()
    whole = data_of(agent_widget.export_html(tmp_path / "all.html", interactive=True).read_text())
    sizes = [len(json.dumps(t)) for t in whole["traits"]["transcript"]["turns"]]
    assert len(sizes) == 5
    cut = data_of(agent_widget.export_html(tmp_path / "cut.html", interactive=True, max_chars=60_000).read_text())
    kept = cut["traits"]["transcript"]["turns"]
    assert 1 <= len(kept) < 5 and cut["left_out"] == 5 - len(kept)
    assert [t["id"] for t in kept] == [t["id"] for t in whole["traits"]["transcript"]["turns"]][-len(kept):]
    assert kept[-1]["answer"] == whole["traits"]["transcript"]["turns"][-1]["answer"]  # whole, not cut
    assert f"{cut['left_out']:,} earlier turn" in cut["traits"]["header"]["read_only"]
    with pytest.raises(ValueError, match="the newest turn alone needs"):
        agent_widget.export_html(tmp_path / "none.html", interactive=True, max_chars=10)
    assert not (tmp_path / "none.html").exists()  # nothing half-written


def test_the_static_copy_stays_the_default(agent_widget, tmp_path):
    page = agent_widget.export_html(tmp_path / "static.html").read_text()
    assert "<script" not in page and "atomemo-snapshot" in page


def test_the_tape_command_answers_a_turn_and_refuses_a_stranger(agent_widget):
    widget = agent_widget
    recorder = widget.send
    first = widget.transcript["turns"][0]["id"]
    request = browser(widget, "tape", message_id=first, since=0, patches=0)
    (answer,) = [m for m in recorder.of("reply") if m["id"] == request]  # type: ignore[attr-defined]
    assert answer["ok"] and answer["result"]["events"] > 0 and answer["result"]["done"]
    request = browser(widget, "tape", message_id="nope", since=0, patches=0)
    (answer,) = [m for m in recorder.of("reply") if m["id"] == request]  # type: ignore[attr-defined]
    assert not answer["ok"]


def test_export_bounds_are_checked(agent_widget, tmp_path):
    with pytest.raises(ValueError, match="max_chars must be >= 1"):
        export.export_data(agent_widget.chat.tree, agent_widget.chat.leaf_id, agent_widget.header, max_chars=0)


FUZZ_ARGS = st.fixed_dictionaries({}, optional={
    "message_id": st.none() | st.integers() | st.text(max_size=40),
    "since": st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=5),
    "patches": st.none() | st.integers(-2**70, 2**70) | st.text(max_size=5) | st.lists(st.integers(), max_size=2),
})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=FUZZ_ARGS, real=st.booleans())
def test_the_tape_command_answers_any_args_properly(agent_widget, args, real):
    """Whatever the browser sends, the tape command answers: a tape within its bounds, or an error."""
    widget = agent_widget
    if real and isinstance(args.get("since"), int) and isinstance(args.get("patches"), int):
        args = {**args, "message_id": widget.transcript["turns"][0]["id"]}
    request = browser(widget, "tape", **args)
    (answer,) = [m for m in widget.send.of("reply") if m["id"] == request]  # type: ignore[attr-defined]
    if answer["ok"]:
        tape = answer["result"]
        assert 0 <= tape["since"] <= tape["events"] and tape["patch_since"] >= 0
        assert len(tape["offsets_ms"]) == tape["events"] - tape["since"]
    else:
        assert isinstance(answer["error"]["code"], str) and answer["error"]["message"]


def test_the_widget_s_export_button_saves_in_the_kernel_s_folder(agent_widget, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = browser(agent_widget, "export_html")
    second = browser(agent_widget, "export_html")
    answers = {m["id"]: m for m in agent_widget.send.of("reply")}  # type: ignore[attr-defined]
    saved = [answers[first]["result"], answers[second]["result"]]
    assert all(a["ok"] for a in (answers[first], answers[second]))
    paths = [Path(s["path"]) for s in saved]
    assert paths[0] != paths[1] and all(p.parent == tmp_path and p.name.startswith("order-agent-") for p in paths)
    assert saved[0]["bytes"] == paths[0].stat().st_size and saved[0]["left_out"] == 0
    assert len(data_of(paths[0].read_text())["traits"]["transcript"]["turns"]) == 2


def test_a_replayed_log_joins_the_widget_and_opens_in_time_travel(agent_widget, server, tmp_path):
    log = agent_widget.chat.save_events(tmp_path / "session.jsonl")
    widget, recorder = make(server, "echo")
    try:
        replies = widget.replay(log)
        assert [r.text for r in replies] == [r.text for r in agent_widget.chat.replies]
        shown = [t["id"] for t in widget.transcript["turns"]]
        assert shown[-1] == replies[-1].message_id and widget.header["travel"] == replies[-1].message_id
        assert replies[-1].message_id in widget.timelines  # the ⏱ under it has a run to travel
        request = browser(widget, "tape", message_id=replies[-1].message_id, since=0, patches=0)
        (answer,) = [m for m in recorder.of("reply") if m["id"] == request]
        assert answer["ok"] and answer["result"]["events"] == len(replies[-1].events) and answer["result"]["done"]
    finally:
        widget.close()


def test_a_replay_is_refused_while_an_answer_streams_or_when_the_log_has_no_reply(agent_widget, tmp_path):
    log = agent_widget.chat.save_events(tmp_path / "session.jsonl")
    header_only = tmp_path / "header.jsonl"
    header_only.write_text(log.read_text().splitlines()[0] + "\n")
    with LocalServer(chunk_size=2, chunk_delay=0.02, node_delay=0) as slow:
        widget, _ = make(slow, "echo")
        try:
            with pytest.raises(ValueError, match="no reply with a message id to show"):
                widget.replay(header_only)
            reply = widget.ask("z" * 2_000)  # a thousand chunks, 20 ms apart: still streaming below
            wait_until(lambda: reply.chunks >= 5, what="5 chunks")
            with pytest.raises(RuntimeError, match="an answer is still streaming: stop it first"):
                widget.replay(log)
            widget.stop()
            widget.wait(10)
            assert [t["id"] for t in widget.transcript["turns"]] == [reply.message_id]  # nothing replayed
            assert "travel" not in widget.header
        finally:
            widget.close()


def test_an_evaluation_row_exports_as_one_file(server: LocalServer, tmp_path):
    from atomemo_notebook import evaluate

    from .test_evaluate import chat

    results = evaluate(chat(server, "flaky", "exporter"), ["Is the blue kettle in stock?",
                                                          "Is the red chair in stock? fail"]).wait()
    failed = results.failed()[0] if results.failed() else 1
    page = results.export_html(failed, tmp_path / "row.html").read_text()
    data = data_of(page)
    (turn,) = data["traits"]["transcript"]["turns"]
    assert turn["query"] == results.records[failed]["query"]
    assert data["tapes"][turn["id"]]["events"] > 0 and data["traits"]["header"]["app_name"].startswith("Evaluation row")
    assert server.api_key not in page
    with pytest.raises(ValueError, match="row must be a table position from 0 to 1"):
        results.export_html(2, tmp_path / "none.html")


def test_the_evaluation_table_exports_the_selected_row(server: LocalServer, tmp_path, monkeypatch):
    from atomemo_notebook import evaluate
    from atomemo_notebook.evaluation._view import EvalWidget

    from .test_evaluate import chat

    monkeypatch.chdir(tmp_path)
    results = evaluate(chat(server, "echo", "table-exporter"), ["hello", "world"]).wait()
    table = EvalWidget(results)
    sent: list[dict[str, Any]] = []
    table.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    table._on_msg(table, {"type": "export", "row": 1}, [])
    table._on_msg(table, {"type": "export", "row": "x"}, [])
    saved, refused = sent
    assert Path(saved["path"]).parent == tmp_path and "world" in Path(saved["path"]).read_text()
    assert refused == {"type": "exported", "error": "row must be a table position, got 'x'"}
    table.close()
