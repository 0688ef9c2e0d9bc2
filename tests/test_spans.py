"""Traces out (model/_spans.py): replies made from neutral events, mapped to OpenTelemetry spans
and passed through the SDK's own in-memory exporter; the same for the embedded demo's chats, a
saved event log and an evaluation; and hostile replies (odd names, 10,000 nodes, runs that never
end, parents in a cycle) always map to bounded spans that OTLP can encode."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from atomemo_notebook import Reply, SpanExportError, connect, export_spans, load_events, to_spans
from atomemo_notebook.model import _spans as spans_module
from atomemo_notebook.protocol import _neutral as n
from atomemo_notebook.protocol._log import register_secret

T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
T0_NS = 1_796_385_600 * 1_000_000_000  # T0 in nanoseconds since the epoch
MS = 1_000_000


def reply_of(events: list[tuple[float, n.Neutral]], *, close: str | None = "done", finished: float | None = None,
             query: str = "Where is order 1042?") -> Reply:
    """A reply folded from neutral events at the given offsets (seconds), as a stream would."""
    reply = Reply(query, started_at=T0, clock=lambda: 0.0, system="atomemo")
    for at, event in events:
        reply.fold(event, at)
    if close is not None:
        reply.close(None if close == "done" else close, offset=finished if finished is not None else
                    max((at for at, _ in events), default=0.0))
    return reply


def agent_run() -> Reply:
    return reply_of([
        (0.0, n.Started("msg-1", "conv-1")),
        (0.01, n.RunStarted("exec-1")),
        (0.02, n.NodeStarted("run-trigger", "trigger", name="Chat Trigger", type="chat_trigger")),
        (0.03, n.NodeFinished("run-trigger", "trigger", "succeeded", output={"query": "q"})),
        (0.04, n.NodeStarted("run-search", "search", name="Search help center", type="knowledge_retrieval")),
        (0.05, n.NodeFinished("run-search", "search", "succeeded", output={"hits": 2})),
        (0.10, n.NodeStarted("run-agent", "agent", name="Order agent", type="ai_agent", inputs={"q": 1})),
        (0.20, n.ToolStarted("call-1", "lookup_order", args={"order_id": "A-1042"}, parent_run_id="run-agent")),
        (0.30, n.ToolFinished("call-1", "lookup_order", result={"status": "shipped"}, parent_run_id="run-agent")),
        (0.35, n.Text("Your order ")),
        (0.40, n.NodeFinished("run-agent", "agent", "succeeded", output={"text": "shipped"}, tokens=321)),
        (0.45, n.NodeStarted("run-llm", "llm", name="Draft answer", type="llm")),
        (0.50, n.NodeFinished("run-llm", "llm", "succeeded", tokens=100)),
        (0.52, n.Citations((n.Citation("Shipping", snippet="We ship in 2 days", url="https://x.test/s", score=0.9),))),
        (0.55, n.Text("has shipped.")),
        (0.60, n.Usage(prompt_tokens=300, completion_tokens=121, total_tokens=421, price=0.002, currency="USD")),
        (0.70, n.RunFinished("exec-1", "succeeded")),
    ], finished=0.75)


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def through_the_sdk(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """What an exporter receives: the SDK's in-memory exporter keeps what it is given."""
    exporter = InMemorySpanExporter()
    exporter.export(spans)
    return list(exporter.get_finished_spans())


# -- the mapping -------------------------------------------------------------------------------------

def test_an_agent_run_maps_to_a_tree_of_kinds_with_real_times() -> None:
    spans = through_the_sdk(to_spans(agent_run(), system="atomemo", app="Order Agent", user_id="ana"))
    named = by_name(spans)
    assert list(named) == ["invoke_workflow Order Agent", "Chat Trigger", "Search help center",
                           "invoke_agent Order agent", "execute_tool lookup_order", "Draft answer"]
    root, agent, tool = named["invoke_workflow Order Agent"], named["invoke_agent Order agent"], \
        named["execute_tool lookup_order"]
    assert root.parent is None
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    kinds = {s.name: s.attributes["openinference.span.kind"] for s in spans}
    assert kinds == {"invoke_workflow Order Agent": "CHAIN", "Chat Trigger": "CHAIN", "Search help center": "RETRIEVER",
                     "invoke_agent Order agent": "AGENT", "execute_tool lookup_order": "TOOL", "Draft answer": "LLM"}
    langfuse = {s.name: s.attributes["langfuse.observation.type"] for s in spans}
    assert langfuse["Draft answer"] == "generation" and langfuse["execute_tool lookup_order"] == "tool"
    assert tool.parent is not None and tool.parent.span_id == agent.context.span_id
    assert agent.parent is not None and agent.parent.span_id == root.context.span_id
    # Real starts and ends, to the nanosecond, from the reply's own offsets.
    assert (agent.start_time, agent.end_time) == (T0_NS + 100 * MS, T0_NS + 400 * MS)
    assert (tool.start_time, tool.end_time) == (T0_NS + 200 * MS, T0_NS + 300 * MS)
    assert (root.start_time, root.end_time) == (T0_NS, T0_NS + 750 * MS)
    attrs = root.attributes
    assert attrs["session.id"] == "conv-1" and attrs["user.id"] == "ana"
    assert attrs["input.value"] == "Where is order 1042?" and attrs["output.value"] == "Your order has shipped."
    assert attrs["gen_ai.operation.name"] == "invoke_workflow" and attrs["atomemo.execution_id"] == "exec-1"
    assert attrs["gen_ai.usage.input_tokens"] == 300 and attrs["gen_ai.usage.output_tokens"] == 121
    assert "llm.token_count.total" not in attrs  # the nodes carry theirs: Phoenix would count them twice
    assert named["Draft answer"].attributes["llm.token_count.total"] == 100
    assert agent.attributes["llm.token_count.total"] == 321 and agent.attributes["agent.name"] == "Order agent"
    assert json.loads(str(tool.attributes["gen_ai.tool.call.arguments"])) == {"order_id": "A-1042"}
    assert json.loads(str(tool.attributes["output.value"])) == {"status": "shipped"}
    assert tool.attributes["gen_ai.tool.call.id"] == "call-1" and tool.attributes["tool.name"] == "lookup_order"
    search = named["Search help center"].attributes
    assert search["retrieval.documents.0.document.content"] == "We ship in 2 days"
    assert search["retrieval.documents.0.document.score"] == 0.9
    assert [e.name for e in root.events] == ["first token"]
    assert root.events[0].timestamp == T0_NS + 350 * MS
    assert all(s.status.status_code is StatusCode.OK for s in spans)


def test_loop_runs_nest_under_their_loop_named_or_open() -> None:
    named_parent = reply_of([
        (0.0, n.RunStarted("exec-loop")),
        (0.1, n.NodeStarted("loop-1", "loop", name="Retry loop", type="loop")),
        (0.2, n.NodeStarted("http-1", "http", name="Fetch", type="http_request", parent_run_id="loop-1")),
        (0.3, n.NodeFinished("http-1", "http", "failed", error="HTTP 503 (attempt 1)")),
        (0.4, n.NodeFinished("loop-1", "loop", "break")),
        (0.5, n.NodeStarted("after", "after", name="After", type="if")),
        (0.6, n.NodeFinished("after", "after", "succeeded")),
        (0.7, n.RunFinished("exec-loop", "failed", error="the loop gave up")),
    ])
    # The same run as a system that does not name the loop (Atomemo, Pipelit): nested by time.
    by_time = reply_of([(at, e if not isinstance(e, n.NodeStarted) else
                         n.NodeStarted(e.run_id, e.node_id, name=e.name, type=e.type)) for at, e in [
        (0.0, n.RunStarted("exec-loop-2")),
        (0.1, n.NodeStarted("loop-1", "loop", name="Retry loop", type="loop")),
        (0.2, n.NodeStarted("http-1", "http", name="Fetch", type="http_request")),
        (0.3, n.NodeFinished("http-1", "http", "failed", error="HTTP 503 (attempt 1)")),
        (0.4, n.NodeFinished("loop-1", "loop", "break")),
        (0.5, n.NodeStarted("after", "after", name="After", type="if")),
        (0.6, n.NodeFinished("after", "after", "succeeded")),
        (0.7, n.RunFinished("exec-loop-2", "failed", error="the loop gave up")),
    ]])
    for reply in (named_parent, by_time):
        named = by_name(through_the_sdk(to_spans(reply)))
        loop, fetch, after, root = named["Retry loop"], named["Fetch"], named["After"], named["invoke_workflow"]
        assert fetch.parent is not None and fetch.parent.span_id == loop.context.span_id
        assert after.parent is not None and after.parent.span_id == root.context.span_id
        assert fetch.status.status_code is StatusCode.ERROR and fetch.status.description == "HTTP 503 (attempt 1)"
        assert loop.status.status_code is StatusCode.OK  # a loop that breaks out ended as designed
        assert root.status.status_code is StatusCode.ERROR and root.status.description == "the loop gave up"
        assert fetch.attributes["graph.node.parent_id"] == "loop"


def test_reported_steps_are_events_on_the_root_not_invented_durations() -> None:
    reply = reply_of([
        (0.0, n.Started("m-ody", "c-ody")),
        (0.5, n.Text("Answer.")),
        (0.9, n.NodeStarted("m-ody:agent", "agent:Support", name="Support", type="agent", reported=True)),
        (0.9, n.NodeFinished("m-ody:agent", "agent:Support", "succeeded")),
        (0.9, n.NodeStarted("m-ody:step:0", "s0", name="Help center", type="rag", reported=True,
                            parent_run_id="m-ody:agent")),
        (0.9, n.NodeFinished("m-ody:step:0", "s0", "succeeded", output={"chunks": 3})),
        (0.9, n.MessageEnded()),
    ], finished=1.0)
    spans = through_the_sdk(to_spans(reply, system="odyssey"))
    assert [s.name for s in spans] == ["invoke_workflow odyssey"]
    root = spans[0]
    assert [e.name for e in root.events] == ["first token", "Support", "Help center"]
    step = root.events[2]
    assert step.timestamp == T0_NS + 1000 * MS  # known when the answer ended, not before
    assert step.attributes is not None and step.attributes["openinference.span.kind"] == "RETRIEVER"
    assert step.attributes["atomemo.node.reported"] is True


def test_ids_are_derived_from_the_run_so_exporting_twice_sends_the_same_spans() -> None:
    first, again = to_spans(agent_run()), to_spans(agent_run())
    assert [(s.context.trace_id, s.context.span_id) for s in first] == \
        [(s.context.trace_id, s.context.span_id) for s in again]
    # The trace id is the execution id's hash: anyone can find a run's trace from its id.
    digest = hashlib.sha256(b"atomemo-notebook\x1fexecution\x1fexec-1\x1ftrace").digest()
    assert first[0].context.trace_id == int.from_bytes(digest[:16], "big")
    other = reply_of([(0.0, n.RunStarted("exec-2")), (0.1, n.RunFinished("exec-2", "succeeded"))])
    assert to_spans(other)[0].context.trace_id != first[0].context.trace_id
    assert len({s.context.span_id for s in first}) == len(first)


def test_a_run_without_an_end_ends_at_the_reply_and_says_so() -> None:
    reply = reply_of([
        (0.0, n.RunStarted("exec-open")),
        (0.1, n.NodeStarted("r1", "n1", name="Slow", type="code")),
        (0.2, n.ToolStarted("c1", "search", node_id="n1")),
    ], close=None)  # still streaming: nothing has ended
    named = by_name(to_spans(reply))
    slow, tool, root = named["invoke_agent Slow"], named["execute_tool search"], named["invoke_workflow"]
    assert slow.end_time == root.end_time == T0_NS + 200 * MS
    assert slow.attributes["atomemo.end_unknown"] is True and root.attributes["atomemo.end_unknown"] is True
    assert tool.attributes["atomemo.end_unknown"] is True
    assert slow.status.status_code is StatusCode.UNSET


# -- what leaves the kernel ------------------------------------------------------------------------

def test_redact_sees_every_value_whole_and_can_drop_it() -> None:
    seen: dict[str, Any] = {}

    def redact(key: str, value: Any) -> Any:
        seen[key] = value
        if key == "user.id":
            return None
        if isinstance(value, str):
            return value.replace("A-1042", "A-****")
        return value

    spans = to_spans(agent_run(), user_id="ana@example.com", redact=redact, max_value=20)
    named = by_name(spans)
    assert "user.id" not in named["invoke_workflow"].attributes
    assert seen["user.id"] == "ana@example.com"
    # The hook saw the whole argument before it was cut to 20 characters.
    assert seen["gen_ai.tool.call.arguments"] == '{"order_id": "A-1042"}'
    assert named["execute_tool lookup_order"].attributes["gen_ai.tool.call.arguments"] == '{"order_id": "A-****"}'[:20]
    assert "name" in seen  # span names pass the hook too


def test_a_known_api_key_never_leaves_in_any_value_or_name() -> None:
    key = "sk-test-key-never-in-a-span-0123456789"
    register_secret(key)
    reply = reply_of([
        (0.0, n.RunStarted("exec-key")),
        (0.1, n.NodeStarted("r", "n", name=f"node {key}", type="code", inputs={"auth": f"Bearer {key}"})),
        (0.2, n.NodeFinished("r", "n", "failed", error=f"401 for {key}")),
    ], query=f"my key is {key}")
    spans = to_spans(reply, user_id=key)
    encoded = encode_spans(spans).SerializeToString()
    assert key.encode() not in encoded
    assert b"[redacted]" in encoded


def test_values_are_cut_to_max_value_and_traces_to_max_spans() -> None:
    events: list[tuple[float, n.Neutral]] = [(0.0, n.RunStarted("exec-big"))]
    for i in range(50):
        events += [(0.001 * i, n.NodeStarted(f"r{i}", f"n{i}", name="x" * 1000, type="code", inputs={"v": "y" * 10_000})),
                   (0.001 * i + 0.0005, n.NodeFinished(f"r{i}", f"n{i}", "succeeded", output="z" * 10_000))]
    spans = to_spans(reply_of(events), max_value=100, max_spans=10)
    assert len(spans) == 10
    root = spans[0]
    assert root.attributes["atomemo.spans_dropped"] == 41
    for span in spans:
        assert len(span.name) <= spans_module.MAX_NAME
        for value in span.attributes.values():
            assert not isinstance(value, str) or len(value) <= 100
    assert str(spans[1].attributes["output.value"]).endswith("characters in all]")


def test_without_the_otel_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ImportError, match=r"atomemo-notebook\[otel\]"):
        to_spans(agent_run())


@pytest.mark.parametrize(("given", "url"), [
    ("http://127.0.0.1:6006", "http://127.0.0.1:6006/v1/traces"),
    ("http://127.0.0.1:6006/", "http://127.0.0.1:6006/v1/traces"),
    ("https://cloud.langfuse.com/api/public/otel", "https://cloud.langfuse.com/api/public/otel/v1/traces"),
    ("http://jaeger:4318/v1/traces", "http://jaeger:4318/v1/traces"),
    (None, None),
])
def test_a_receivers_base_url_gets_the_traces_path(given: str | None, url: str | None) -> None:
    assert spans_module._traces_url(given) == url


def test_a_receiver_that_is_not_there_is_an_error_not_silence() -> None:
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SpanExportError, match=f"127.0.0.1:{port}"):
        export_spans(agent_run(), endpoint=f"http://127.0.0.1:{port}", timeout=1.0)


# -- chats, logs and evaluations of the embedded demo ---------------------------------------------

def test_a_saved_log_maps_to_the_same_traces_as_the_chat(tmp_path: Any) -> None:
    chat = connect("dify", demo="agent")
    try:
        chat.ask("Where is order 1042? I'm in Berlin.")
        live = to_spans(chat)
        path = chat.save_events(tmp_path / "run.jsonl")
    finally:
        chat.close()
    replayed = to_spans(load_events(path))
    assert [(s.name, s.context.span_id, s.parent.span_id if s.parent else None) for s in replayed] == \
        [(s.name, s.context.span_id, s.parent.span_id if s.parent else None) for s in live]
    assert replayed[0].attributes["atomemo.system"] == "dify"
    assert replayed[0].name == "invoke_workflow Order Agent"


def test_an_evaluation_is_one_trace_per_row_tagged_with_its_name_and_scores() -> None:
    from atomemo_notebook import contains, evaluate

    rows = [{"query": f"Where is order {1000 + i}?", "expected": "shipped"} for i in range(3)]
    results = evaluate(connect("atomemo", demo="agent", asynchronous=True), rows, scorers=[contains]).wait()
    spans = to_spans(results, evaluation="nightly")
    roots = [s for s in spans if s.parent is None]
    assert [r.attributes["atomemo.evaluation.row"] for r in roots] == [0, 1, 2]
    assert len({s.context.trace_id for s in spans}) == 3
    for root in roots:
        assert root.name == f"evaluate nightly row {root.attributes['atomemo.evaluation.row']}"
        assert root.attributes["atomemo.evaluation.name"] == "nightly"
        assert root.attributes["atomemo.evaluation.score.contains"] is True
        assert root.attributes["tag.tags"] == ("nightly",)
        runs = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
        assert [s.name for s in runs] == ["invoke_workflow atomemo"]
        assert root.start_time <= runs[0].start_time and runs[0].end_time <= root.end_time


# -- hostile replies ------------------------------------------------------------------------------

HOSTILE_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["", "\x00", "\ud800", "名前" * 100, "../../etc", "<script>", "a" * 5000])
OFFSETS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1, 100), st.just(1e300))
RUN_IDS = st.sampled_from(["r0", "r1", "r2", "r3", "", "missing"])


@st.composite
def hostile_events(draw: st.DrawFn) -> list[tuple[float, n.Neutral]]:
    kinds = st.one_of(
        st.builds(n.NodeStarted, RUN_IDS, HOSTILE_TEXT, name=HOSTILE_TEXT, type=st.sampled_from(
            ["loop", "llm", "ai_agent", "rag", "tool", "", "iteration"]), parent_run_id=st.none() | RUN_IDS,
            reported=st.booleans(), inputs=st.none() | HOSTILE_TEXT),
        st.builds(n.NodeFinished, RUN_IDS, HOSTILE_TEXT, st.sampled_from(["succeeded", "failed", "break", "x"]),
                  output=st.none() | HOSTILE_TEXT | st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=3),
                  error=st.none() | HOSTILE_TEXT, tokens=st.none() | st.integers(-(2**70), 2**70)),
        st.builds(n.ToolStarted, HOSTILE_TEXT, HOSTILE_TEXT, args=st.none() | HOSTILE_TEXT,
                  parent_run_id=st.none() | RUN_IDS),
        st.builds(n.ToolFinished, HOSTILE_TEXT, HOSTILE_TEXT, result=st.none() | HOSTILE_TEXT),
        st.builds(n.RunStarted, HOSTILE_TEXT), st.builds(n.RunFinished, HOSTILE_TEXT, st.sampled_from(["failed", "x"])),
        st.builds(n.Text, HOSTILE_TEXT), st.builds(n.Usage, st.none() | st.integers(-(2**70), 2**70)),
        st.builds(n.Started, HOSTILE_TEXT, st.none() | HOSTILE_TEXT),
    )
    return draw(st.lists(st.tuples(OFFSETS, kinds), max_size=30))


def assert_bounded_and_valid(spans: list[ReadableSpan], max_value: int, max_spans: int, traces: int) -> None:
    ids = {(s.context.trace_id, s.context.span_id) for s in spans}
    assert len(ids) == len(spans), "every span has its own id"
    assert len(spans) <= max_spans * traces
    for span in spans:
        assert span.context.is_valid
        assert span.parent is None or (span.parent.trace_id, span.parent.span_id) in ids
        assert span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time
        assert 0 < len(span.name) <= spans_module.MAX_NAME
        for value in [*span.attributes.values(), *(v for e in span.events for v in (e.attributes or {}).values())]:
            assert isinstance(value, str | bool | int | float | tuple)
            assert not isinstance(value, str) or len(value) <= max_value
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == traces
    # Every parent chain reaches its root (no cycle), walked without recursion.
    parent_of = {s.context.span_id: s.parent.span_id if s.parent else None for s in spans}
    for start in parent_of:
        seen, at = set(), start
        while at is not None:
            assert at not in seen, "a cycle of parents"
            seen.add(at)
            at = parent_of[at]
    encode_spans(spans).SerializeToString()  # OTLP takes every one of them


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=hostile_events(), max_value=st.integers(0, 300), finished=st.none() | OFFSETS)
def test_any_reply_maps_to_bounded_valid_spans(events: list[tuple[float, n.Neutral]], max_value: int,
                                               finished: float | None) -> None:
    reply = Reply("q", started_at=T0, clock=lambda: 0.0, system="atomemo")
    for at, event in events:
        reply.fold(event, at)
    if finished is not None:
        reply.close(offset=finished)
    spans = to_spans(reply, max_value=max_value, max_spans=40)
    assert_bounded_and_valid(spans, max_value, 40, 1)


def test_ten_thousand_nested_nodes_without_ends_map_without_recursion() -> None:
    events: list[tuple[float, n.Neutral]] = [(0.0, n.RunStarted("exec-deep"))]
    for i in range(10_000):  # each a loop inside the one before: a chain 10,000 deep, none ended
        events.append((i * 1e-4, n.NodeStarted(f"run-{i}", f"node-{i}", name=f"step {i} \u202e", type="loop",
                                               parent_run_id=f"run-{i - 1}" if i else None)))
    reply = reply_of(events, close=None)
    spans = to_spans(reply)
    assert_bounded_and_valid(spans, spans_module.MAX_VALUE, spans_module.MAX_SPANS, 1)
    assert len(spans) == spans_module.MAX_SPANS
    assert spans[0].attributes["atomemo.spans_dropped"] == 10_000 - (spans_module.MAX_SPANS - 1)
    deepest = spans[-1]
    assert deepest.parent is not None and deepest.parent.span_id == spans[-2].context.span_id


def test_parents_named_in_a_cycle_cannot_form_one() -> None:
    reply = reply_of([
        (0.0, n.RunStarted("exec-cycle")),
        (0.1, n.NodeStarted("a", "a", name="A", type="loop", parent_run_id="b")),
        (0.2, n.NodeStarted("b", "b", name="B", type="loop", parent_run_id="a")),
        (0.3, n.NodeStarted("a", "a2", name="A again", type="code", parent_run_id="a")),
    ])
    spans = to_spans(reply)
    assert_bounded_and_valid(spans, spans_module.MAX_VALUE, spans_module.MAX_SPANS, 1)
    named = by_name(spans)
    assert named["A"].parent is not None and named["A"].parent.span_id == named["invoke_workflow"].context.span_id
    assert named["A"].attributes["atomemo.node.parent_missing"] is True
