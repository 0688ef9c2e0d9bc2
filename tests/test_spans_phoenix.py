"""Traces out, checked against a real receiver: Arize Phoenix (tests/phoenix.py builds its venv
from requirements-phoenix.txt and starts it on a free loopback port). The demo conversations of
every system and an evaluation of 20 rows are exported over OTLP/HTTP and read back through
Phoenix's REST API: counts, parent links, kinds, times, status, attributes. Phoenix that cannot
be installed or started fails these tests; they are never skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from atomemo_notebook import connect, contains, evaluate, to_spans
from atomemo_notebook.server import LocalServer

from .phoenix import Phoenix, ensure_venv

pytestmark = pytest.mark.slow

# Each demo app with a question that shows it: retrieval and an LLM; an agent's tool calls; a
# loop of failing requests that ends the run failed.
DEMOS = {"support": "How much does it cost?", "agent": "Where is order 1042? I'm in Berlin.",
         "flaky": "Check the inventory and fail"}
# OdysseyAI's emulated flaky agent answers the failed run with an HTTP 500: no reply to export.
SYSTEM_DEMOS = {"atomemo": list(DEMOS), "dify": list(DEMOS), "pipelit": list(DEMOS), "odyssey": ["support", "agent"]}
# Attributes Phoenix keeps elsewhere (the kind is its span_kind) rather than among the attributes.
MOVED = {"openinference.span.kind"}


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    server = Phoenix(ensure_venv(), tmp_path_factory.mktemp("phoenix")).start()
    print(f"Phoenix answered on {server.url} after {server.started_in:.1f} s")
    try:
        yield server
    finally:
        server.stop()


def hex_id(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def micros(iso: str) -> int:
    """Microseconds since the epoch (Phoenix keeps times to the microsecond), exactly."""
    delta = datetime.fromisoformat(iso) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def plain(value: Any) -> Any:
    """An attribute value as JSON gives it back (a tuple is a list)."""
    return list(value) if isinstance(value, tuple) else value


def flat(attributes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Phoenix's attributes, dotted keys again (it may give `a.b` as {"a": {"b": ...}})."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flat(value, name + ".")
        else:
            out[name] = value
    return out


def assert_phoenix_holds(expected: list[ReadableSpan], stored: list[dict[str, Any]]) -> None:
    """Phoenix holds exactly these spans: the same ids (no duplicate from a second export),
    parents, kinds, times to the microsecond, status and attributes."""
    by_id = {s["context"]["span_id"]: s for s in stored}
    assert len(stored) == len(by_id) == len(expected), f"{len(stored)} stored for {len(expected)} exported"
    for span in expected:
        got = by_id[hex_id(span.context.span_id, 16)]
        assert got["context"]["trace_id"] == hex_id(span.context.trace_id, 32)
        assert got["parent_id"] == (hex_id(span.parent.span_id, 16) if span.parent else None)
        assert got["name"] == span.name
        assert got["span_kind"] == span.attributes["openinference.span.kind"]
        assert span.start_time is not None and span.end_time is not None
        # Phoenix keeps microseconds (through a float of seconds): the same instant, to within one.
        assert abs(micros(got["start_time"]) * 1000 - span.start_time) < 1000
        assert abs(micros(got["end_time"]) * 1000 - span.end_time) < 1000
        assert got["status_code"] == span.status.status_code.name
        if span.status.description:
            assert got["status_message"] == span.status.description
        attributes = flat(got["attributes"])
        for key, value in span.attributes.items():
            if key in MOVED:
                continue
            if key == "metadata" or key.endswith(".metadata"):  # Phoenix parses this JSON, and gives it back dotted
                for name, item in flat({key: json.loads(str(value))}).items():
                    assert attributes[name] == item, name
                continue
            assert plain(attributes[key]) == plain(value), key
        assert [e["name"] for e in got["events"]] == [e.name for e in span.events]


def test_demo_conversations_of_every_system_open_in_phoenix(phoenix: Phoenix) -> None:
    for system, demos in SYSTEM_DEMOS.items():
        project = f"demo-{system}"
        expected: list[ReadableSpan] = []
        for demo in demos:
            with connect(system, demo=demo, user_id="ana") as chat:
                reply = chat.ask(DEMOS[demo])
                # Twice: the ids come from the runs, so Phoenix keeps one copy.
                sent = [chat.export_spans(phoenix.url, project=project) for _ in range(2)]
                spans = to_spans(chat, project=project)
                assert sent == [len(spans)] * 2
                expected += spans
                assert reply.status == ("failed" if demo == "flaky" else "succeeded"), (system, demo)
        stored = phoenix.wait_for_spans(project, len(expected))
        assert_phoenix_holds(expected, stored)
        kinds = {s["span_kind"] for s in stored}
        roots = [s for s in stored if s["parent_id"] is None]
        assert len(roots) == len(demos)
        assert all(flat(r["attributes"])["user.id"] == "ana" for r in roots)
        if system == "odyssey":
            # Steps reported with the answer, without times: events on the root, no child spans.
            assert kinds == {"CHAIN"} and len(stored) == len(demos)
            assert all(len(r["events"]) >= 3 for r in roots)
            continue
        assert {"CHAIN", "AGENT", "TOOL", "RETRIEVER"} <= kinds
        tools = [s for s in stored if s["span_kind"] == "TOOL" and s["name"].startswith("execute_tool")]
        assert {t["name"] for t in tools} == {"execute_tool lookup_order", "execute_tool get_weather",
                                              "execute_tool calculator"}
        agents = {s["context"]["span_id"] for s in stored if s["span_kind"] == "AGENT"}
        assert all(t["parent_id"] in agents for t in tools)
        failed = [s for s in stored if s["name"] == "Fetch inventory"]
        assert len(failed) == 2 and all(s["status_code"] == "ERROR" and "HTTP 503" in s["status_message"]
                                        for s in failed)
        loop = next(s for s in stored if s["name"] == "Retry loop")
        assert all(s["parent_id"] == loop["context"]["span_id"] for s in failed)


def test_an_evaluation_of_20_rows_is_20_traces_to_filter_by_run(phoenix: Phoenix) -> None:
    rows = [{"query": f"Is the blue mug in stock? ({i})" if i % 2 else f"Check the inventory and fail ({i})",
             "expected": "Sorry"} for i in range(20)]
    results = evaluate(connect("atomemo", demo="flaky", asynchronous=True), rows, scorers=[contains]).wait()
    sent = results.export_spans(phoenix.url, name="nightly", project="evaluation")
    expected = to_spans(results, evaluation="nightly", project="evaluation")
    assert sent == len(expected)
    stored = phoenix.wait_for_spans("evaluation", len(expected))
    assert_phoenix_holds(expected, stored)
    roots = [s for s in stored if s["parent_id"] is None]
    assert len(roots) == 20 and len({s["context"]["trace_id"] for s in stored}) == 20
    by_row = {flat(r["attributes"])["atomemo.evaluation.row"]: r for r in roots}
    assert sorted(by_row) == list(range(20))
    for row, root in by_row.items():
        attributes = flat(root["attributes"])
        assert attributes["atomemo.evaluation.name"] == "nightly"
        assert attributes["metadata.evaluation"] == "nightly"
        # Odd rows get the apology (the expected text), even rows end the run failed.
        assert attributes["atomemo.evaluation.score.contains"] is (row % 2 == 1)
        assert root["status_code"] == ("OK" if row % 2 else "ERROR")


def test_the_api_key_never_reaches_phoenix(phoenix: Phoenix, server: LocalServer) -> None:
    key = server.api_key
    # The echo app streams the question back: the key comes back as the answer and a node's output.
    with connect("atomemo", **server.demo("atomemo", "echo"), user_id=key) as chat:
        chat.ask(f"my key is {key}")
        sent = chat.export_spans(phoenix.url, headers={"x-trace-note": "sent as a header, not a span"},
                                 project="secrets")
    stored = phoenix.wait_for_spans("secrets", sent)
    assert len(stored) == sent
    text = json.dumps(stored)
    assert key not in text
    assert "my key is [redacted]" in text
