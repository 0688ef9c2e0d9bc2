"""Traces out: replies as OpenTelemetry spans, for Arize Phoenix, Langfuse, Jaeger, Tempo or
any OTLP receiver. `to_spans(source)` returns SDK `ReadableSpan`s for a user's own exporter;
`export_spans(source, endpoint=...)` sends them over OTLP/HTTP.

The mapping (docs/guides/traces.md has it as a table): one trace per execution (per row, for
an evaluation), its ids derived from the execution and node-run ids, so exporting twice sends
the same spans, never duplicates. A root span per workflow run (OpenInference CHAIN, OTel
GenAI `invoke_workflow {app}`), a child per node run with its own start and end (a loop's runs
under it; agents, LLMs, retrievals and tools as AGENT, LLM, RETRIEVER, TOOL), tool calls under
their agent, a failed run ERROR with its message. Steps a system reported without times
(OdysseyAI's) become events on the root span: no duration is invented.

Every value is the server's and so hostile: each attribute passes the `redact` hook, then any
API key this process knows is replaced, then it is cut to `max_value` characters; a trace keeps
at most `max_spans` spans and events. OpenTelemetry is imported only when spans are made: it is
the optional extra `otel`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._version import __version__
from ..protocol._errors import SpanExportError
from ..protocol._log import scrub_secrets
from ..protocol._wire import FileRef
from ._replay import EventLog, replay
from .reply import NodeSpan, Reply, ToolSpan

if TYPE_CHECKING:
    from openinference.semconv.trace import SpanAttributes
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

__all__ = ["MAX_SPANS", "MAX_VALUE", "Redact", "SpanExportError", "export_spans", "span_kind", "to_spans"]

Redact = Callable[[str, Any], Any]
"""`redact(key, value) -> value`: sees every attribute (and span name, as key "name") before it
is kept; returns the value to send, or None to leave the attribute out."""
MAX_VALUE = 4096  # characters of one attribute value (JSON of a node's output, an answer...)
MAX_SPANS = 5000  # spans and events of one trace; past it, the root says how many were left out
MAX_NAME = 200  # characters of a span's name
MAX_LISTED = 20  # anomalies, tags or cited documents listed on one span
MAX_SCORES = 64  # score columns of one evaluation row
LOOP_TYPES = ("loop", "iteration")  # as the timeline's (views/_view_state.py): runs inside one nest under it
MAX_OFFSET = 1e6  # seconds from a reply's start beyond which a time is not believed
BATCH = 256  # spans per OTLP request
TRACES_PATH = "/v1/traces"

# A node's type -> its OpenInference span kind; any node that called tools is an AGENT.
_AGENT_HINT = "agent"
_KINDS = {
    "llm": "LLM", "question-classifier": "LLM", "question_classifier": "LLM", "parameter-extractor": "LLM",
    "parameter_extractor": "LLM", "chat_model": "LLM",
    "knowledge_retrieval": "RETRIEVER", "knowledge-retrieval": "RETRIEVER", "rag": "RETRIEVER",
    "retrieval": "RETRIEVER", "retriever": "RETRIEVER", "memory_read": "RETRIEVER",
    "tool": "TOOL", "http_request": "TOOL", "http-request": "TOOL", "http": "TOOL",
}
# OpenInference kind -> Langfuse's observation type (Langfuse calls an LLM call a generation).
_LANGFUSE = {"CHAIN": "chain", "AGENT": "agent", "LLM": "generation", "RETRIEVER": "retriever", "TOOL": "tool"}


def span_kind(node: NodeSpan) -> str:
    """The OpenInference span kind of a node run: AGENT, LLM, RETRIEVER, TOOL or CHAIN."""
    kind = (node.type or "").lower()
    if node.tools or _AGENT_HINT in kind:
        return "AGENT"
    return _KINDS.get(kind, "CHAIN")


def _otel() -> _Modules:
    """The OpenTelemetry modules, imported on first use (the optional extra `otel`)."""
    try:
        from openinference.semconv.trace import SpanAttributes
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.trace.export import SpanExportResult
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
    except ImportError as exc:
        raise ImportError(
            "traces need OpenTelemetry: pip install 'atomemo-notebook[otel]' "
            f"(opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http, openinference-semantic-conventions); {exc}"
        ) from exc
    return _Modules(SpanAttributes, OTLPSpanExporter, Resource, Event, ReadableSpan, SpanExportResult,
                    InstrumentationScope, SpanContext, SpanKind, Status, StatusCode, TraceFlags)


@dataclasses.dataclass(frozen=True)
class _Modules:
    """What this module uses of OpenTelemetry, once imported."""

    SpanAttributes: type[SpanAttributes]
    OTLPSpanExporter: type[OTLPSpanExporter]
    Resource: type[Resource]
    Event: type[Event]
    ReadableSpan: type[ReadableSpan]
    SpanExportResult: type[SpanExportResult]
    InstrumentationScope: type[InstrumentationScope]
    SpanContext: type[SpanContext]
    SpanKind: type[SpanKind]
    Status: type[Status]
    StatusCode: type[StatusCode]
    TraceFlags: type[TraceFlags]


def _id(bits: int, parts: Sequence[str]) -> int:
    """A stable id of `bits` bits from text parts (never 0, which OpenTelemetry reads as invalid)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[: bits // 8], "big") or 1


def _clean(text: str) -> str:
    # A lone surrogate (from a log read with surrogateescape) is not UTF-8: protobuf would refuse the span.
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, marked where it was cut (when the mark fits)."""
    if len(text) <= limit:
        return text
    note = f"…[cut: {len(text):,} characters in all]"
    return text[:limit] if limit < 2 * len(note) else text[: limit - len(note)] + note


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):  # a cycle, a nesting too deep: say what it is, not what is in it
        return f"<{type(value).__name__} that is not JSON>"


def _plain(value: Any) -> Any:
    """A value OpenTelemetry takes as it is (text, a whole number in 64 bits, a finite float, a
    bool, a list of text), or its JSON text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    return _json(value)


@dataclasses.dataclass
class _Options:
    redact: Redact | None
    max_value: int
    max_spans: int


class _Trace:
    """The spans of one trace, made in order (a parent before its children), within its budget."""

    def __init__(self, otel: _Modules, key: Sequence[str], options: _Options, resource: Any, scope: Any) -> None:
        self.otel = otel
        self.key = list(key)
        self.options = options
        self.resource = resource
        self.scope = scope
        self.trace_id = _id(128, [*self.key, "trace"])
        self.spans: list[ReadableSpan] = []
        self.used: set[int] = set()
        self.budget = options.max_spans
        self.dropped = 0

    def span_id(self, *parts: str) -> int:
        """Stable per (trace, parts); a repeat (two runs with one id, in a hostile stream) gets its own."""
        base = [*self.key, *parts]
        value, n = _id(64, base), 0
        while value in self.used:
            n += 1
            value = _id(64, [*base, str(n)])
        self.used.add(value)
        return value

    def context(self, span_id: int) -> SpanContext:
        otel = self.otel
        return otel.SpanContext(self.trace_id, span_id, is_remote=False,
                                trace_flags=otel.TraceFlags(otel.TraceFlags.SAMPLED))

    def take(self) -> bool:
        """One more span or event, if the trace's budget allows."""
        if self.budget > 0:
            self.budget -= 1
            return True
        self.dropped += 1
        return False

    def attributes(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Attribute values OpenTelemetry takes: each seen whole by the redact hook, then scrubbed
        of every key this process knows, then bounded."""
        redact, out = self.options.redact, {}
        for key, value in raw.items():
            if value is None:
                continue
            plain = _plain(value)
            if redact is not None:
                plain = redact(key, plain)
                if plain is None:
                    continue
                plain = _plain(plain)  # whatever the hook returned is made plain and bounded too
            out[key] = self._bounded(plain)
        return out

    def _bounded(self, value: Any) -> Any:
        if isinstance(value, list):
            return tuple(self.text(item) for item in value[:MAX_LISTED])
        return self.text(value) if isinstance(value, str) else value

    def text(self, text: str) -> str:
        # Scrubbed before it is cut: a key cut in half would no longer be found.
        return _cut(_clean(scrub_secrets(text)), self.options.max_value)

    def name(self, text: str) -> str:
        named: Any = text
        if self.options.redact is not None:
            named = self.options.redact("name", text)
            named = "[redacted]" if named is None else str(named)
        return _cut(_clean(scrub_secrets(named)), MAX_NAME) or "(unnamed)"

    def add(self, name: str, span_id: int, parent: int | None, start: int, end: int, attributes: Mapping[str, Any],
            status: Status | None = None, events: Sequence[Event] = ()) -> None:
        otel = self.otel
        self.spans.append(otel.ReadableSpan(
            name=self.name(name), context=self.context(span_id),
            parent=self.context(parent) if parent is not None else None, resource=self.resource,
            attributes=self.attributes(attributes), events=tuple(events), kind=otel.SpanKind.INTERNAL,
            status=status or otel.Status(otel.StatusCode.UNSET), start_time=start, end_time=max(start, end),
            instrumentation_scope=self.scope))

    def event(self, name: str, at: int, attributes: Mapping[str, Any]) -> Event:
        return self.otel.Event(self.name(name), self.attributes(attributes), timestamp=at)

    def _message(self, message: str | None) -> str | None:
        if not message:
            return None
        kept = self.attributes({"status.message": message})  # the same hook and bounds as any value
        return str(kept["status.message"]) if "status.message" in kept else None

    def status(self, failed: bool, ok: bool, message: str | None) -> Status:
        otel = self.otel
        if failed:
            return otel.Status(otel.StatusCode.ERROR, self._message(message))
        return otel.Status(otel.StatusCode.OK if ok else otel.StatusCode.UNSET)


@dataclasses.dataclass
class _Context:
    """What a reply alone does not know: the system, the app and the user it ran for."""

    system: str | None = None
    app: str | None = None
    user_id: str | None = None
    session_id: str | None = None


def _epoch_ns(when: datetime) -> int:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    delta = aware - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _offset_ns(offset: float | None) -> int | None:
    """A reply's offset in nanoseconds, if it is a time to believe."""
    if offset is None or not isinstance(offset, int | float) or not math.isfinite(offset) or abs(offset) > MAX_OFFSET:
        return None
    return round(offset * 1e9)


def _query(reply: Reply) -> str:
    query = reply.query
    return f"[file] {query.filename}" if isinstance(query, FileRef) else str(query)


def _trace_key(reply: Reply) -> list[str]:
    if reply.execution_id:
        return ["atomemo-notebook", "execution", reply.execution_id]
    if reply.message_id:
        return ["atomemo-notebook", "message", reply.message_id]
    # Nothing the server named: the question and when it was asked are what is stable.
    return ["atomemo-notebook", "reply", reply.started_at.isoformat(), _query(reply)]


def _start_of(node: NodeSpan) -> float:
    return node.started if node.started is not None and _offset_ns(node.started) is not None else math.inf


def _end_of(node: NodeSpan) -> float:
    return node.finished if node.finished is not None and _offset_ns(node.finished) is not None else math.inf


def _unknown(start: int | None, end: int | None) -> dict[str, Any]:
    return {"atomemo.start_unknown": True if start is None else None,
            "atomemo.end_unknown": True if end is None else None}


def _reply_spans(trace: _Trace, reply: Reply, context: _Context, parent: int | None, prefix: str) -> tuple[int, int]:
    """The spans of one reply into `trace` (its root under `parent`); returns the root's start and end."""
    attrs = trace.otel.SpanAttributes
    base = _epoch_ns(reply.started_at)
    nodes = list(reply.nodes)
    live = [node for node in nodes if not node.reported]
    # Every time this reply knows, to place what has no end of its own.
    times = [t for node in live for t in (node.started, node.finished)]
    times += [t for node in live for tool in node.tools for t in (tool.started, tool.finished)]
    known = [ns for ns in map(_offset_ns, times) if ns is not None]
    finished = _offset_ns(reply.finished)
    last_event = _offset_ns(reply.events[-1].offset) if reply.events else None
    root_start = min([0, *known])
    root_end = max([finished if finished is not None else (last_event or 0), *known, root_start])
    root_id = trace.span_id(prefix, "run")
    first = len(trace.spans)
    if not trace.take():
        return base + root_start, base + root_end
    events: list[Event] = []
    if (ttft := _offset_ns(reply.first_token)) is not None and trace.take():
        events.append(trace.event("first token", base + ttft, {}))
    # The sources an answer cites go on its (last) retrieval, or on the root if it had none.
    retriever = next((node for node in reversed(live) if span_kind(node) == "RETRIEVER"), None)
    # A run may name as its parent only a run before it: a loop starts before the runs inside
    # it, and a hostile stream's cycle of parents cannot form.
    by_run: dict[str, tuple[int, NodeSpan]] = {}
    open_loops: list[tuple[int, NodeSpan]] = []  # for systems that do not name a run's loop: the one open at its start
    for node in nodes:
        if node.reported:  # told of only with the answer (OdysseyAI): an event, not an invented duration
            if trace.take():
                events.append(trace.event(node.name, base + root_end, _node_attributes(attrs, node)))
            for tool in node.tools:
                if trace.take():
                    events.append(trace.event(f"tool {tool.tool_name}", base + root_end,
                                              _tool_attributes(attrs, tool)))
            continue
        if not trace.take():
            continue  # nothing more fits: the root says how many were left out
        span_id = trace.span_id(prefix, "node", node.result_id)
        at = _start_of(node)
        while open_loops and _end_of(open_loops[-1][1]) <= at:
            open_loops.pop()
        owner = by_run.get(node.parent_run_id) if node.parent_run_id else (open_loops[-1] if open_loops else None)
        by_run.setdefault(node.result_id, (span_id, node))
        if any(kind in (node.type or "").lower() for kind in LOOP_TYPES):
            open_loops.append((span_id, node))
        start, end = _offset_ns(node.started), _offset_ns(node.finished)
        node_start = start if start is not None else (end if end is not None else root_start)
        node_end = end if end is not None else root_end
        kind = span_kind(node)
        trace.add(f"invoke_agent {node.name}" if kind == "AGENT" else node.name, span_id,
                  owner[0] if owner else root_id, base + node_start, base + node_end,
                  _node_attributes(attrs, node, kind) | _unknown(start, end)
                  | {"graph.node.parent_id": owner[1].node_id if owner else None,
                     "atomemo.node.parent_missing": True if node.parent_run_id and owner is None else None}
                  | (_documents(reply) if node is retriever else {}),
                  trace.status(node.status == "failed", node.status in ("succeeded", "break"), node.error))
        for tool in node.tools:
            if not trace.take():
                continue
            start, end = _offset_ns(tool.started), _offset_ns(tool.finished)
            tool_id = trace.span_id(prefix, "tool", node.result_id, tool.tool_call_id)
            tool_start = start if start is not None else node_start
            trace.add(f"execute_tool {tool.tool_name}", tool_id, span_id, base + tool_start,
                      base + (end if end is not None else node_end),
                      _tool_attributes(attrs, tool) | _unknown(start, end),
                      trace.status(tool.status == "failed", tool.status == "succeeded", tool.error))

    app = context.app or context.system
    usage = reply.usage
    root = {
        attrs.OPENINFERENCE_SPAN_KIND: "CHAIN", "langfuse.observation.type": "chain",
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": app,
        attrs.SESSION_ID: reply.conversation_id or context.session_id, "gen_ai.conversation.id": reply.conversation_id,
        attrs.USER_ID: context.user_id, attrs.INPUT_VALUE: _query(reply), attrs.INPUT_MIME_TYPE: "text/plain",
        attrs.OUTPUT_VALUE: reply.text, attrs.OUTPUT_MIME_TYPE: "text/markdown",
        "atomemo.system": context.system, "atomemo.execution_id": reply.execution_id,
        "atomemo.message_id": reply.message_id, "atomemo.parent_message_id": reply.parent_id,
        "atomemo.status": reply.status, "atomemo.end_unknown": True if finished is None else None,
        "atomemo.anomalies": [str(a) for a in reply.anomalies[:MAX_LISTED]] or None,
        "gen_ai.usage.input_tokens": usage.prompt_tokens if usage else None,
        "gen_ai.usage.output_tokens": usage.completion_tokens if usage else None,
        "atomemo.usage.price": usage.price if usage else None,
        "atomemo.usage.currency": usage.currency if usage and usage.price is not None else None,
        "atomemo.spans_dropped": trace.dropped or None,
    }
    if usage and not any(node.tokens for node in nodes):
        # Phoenix adds up token counts over a trace: only where no node run carried its own.
        root |= {attrs.LLM_TOKEN_COUNT_PROMPT: usage.prompt_tokens, attrs.LLM_TOKEN_COUNT_COMPLETION:
                 usage.completion_tokens, attrs.LLM_TOKEN_COUNT_TOTAL: usage.total_tokens}
    if retriever is None:
        root |= _documents(reply)
    failed = reply.status == "failed"
    message = reply.run_error or (f"{type(reply.error).__name__}: {reply.error}" if reply.error else None)
    status = trace.status(failed, reply.status in ("succeeded", "recovered"), message or ("failed" if failed else None))
    trace.add(f"invoke_workflow {app}" if app else "invoke_workflow", root_id, parent, base + root_start,
              base + root_end, root, status, events)
    # Made last (it says what was left out), sent first: a receiver meets the parent before its children.
    trace.spans.insert(first, trace.spans.pop())
    return base + root_start, base + root_end


def _node_attributes(attrs: Any, node: NodeSpan, kind: str | None = None) -> dict[str, Any]:
    kind = kind or span_kind(node)
    out: dict[str, Any] = {
        attrs.OPENINFERENCE_SPAN_KIND: kind, "langfuse.observation.type": _LANGFUSE[kind],
        attrs.GRAPH_NODE_ID: node.node_id, attrs.GRAPH_NODE_NAME: node.name,
        "atomemo.node.type": node.type, "atomemo.node.run_id": node.result_id, "atomemo.node.status": node.status,
        attrs.INPUT_VALUE: node.inputs, attrs.OUTPUT_VALUE: node.json_output,
        attrs.INPUT_MIME_TYPE: "application/json" if node.inputs is not None else None,
        attrs.OUTPUT_MIME_TYPE: "application/json" if node.json_output is not None else None,
        "atomemo.node.process_data": node.process_data, "atomemo.node.error": node.error,
        "atomemo.node.ports": list(node.out_ports[:MAX_LISTED]) or None,
        "atomemo.node.iterations": node.iterations or None, "atomemo.node.elapsed_s": node.elapsed,
        "atomemo.node.reported": True if node.reported else None, "atomemo.anomaly": node.anomaly,
    }
    if kind == "AGENT":
        out |= {attrs.AGENT_NAME: node.name, "gen_ai.agent.name": node.name, "gen_ai.operation.name": "invoke_agent"}
    if kind in ("AGENT", "LLM") and node.tokens:
        out[attrs.LLM_TOKEN_COUNT_TOTAL] = node.tokens
    if out["atomemo.node.ports"] is not None:
        out["atomemo.node.ports"] = json.dumps(out["atomemo.node.ports"])
    return out


def _tool_attributes(attrs: Any, tool: ToolSpan) -> dict[str, Any]:
    return {
        attrs.OPENINFERENCE_SPAN_KIND: "TOOL", "langfuse.observation.type": "tool",
        attrs.TOOL_NAME: tool.tool_name, "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.tool_name,
        "gen_ai.tool.call.id": tool.tool_call_id, "gen_ai.tool.call.arguments": tool.args,
        "gen_ai.tool.call.result": tool.result, attrs.INPUT_VALUE: tool.args, attrs.OUTPUT_VALUE: tool.result,
        attrs.INPUT_MIME_TYPE: "application/json" if tool.args is not None else None,
        attrs.OUTPUT_MIME_TYPE: "application/json" if tool.result is not None else None,
        "atomemo.tool.status": tool.status, "atomemo.tool.error": tool.error, "atomemo.anomaly": tool.anomaly,
    }


def _documents(reply: Reply) -> dict[str, Any]:
    """The sources an answer cites, as OpenInference's retrieval documents."""
    out: dict[str, Any] = {}
    for i, c in enumerate(reply.citations[:MAX_LISTED]):
        prefix = f"retrieval.documents.{i}.document"
        metadata = {k: v for k, v in (("title", c.title), ("source", c.source), ("url", c.url)) if v}
        out |= {f"{prefix}.content": c.snippet or c.title, f"{prefix}.id": c.url or c.title,
                f"{prefix}.score": c.score, f"{prefix}.metadata": metadata}
    return out


# -- sources ------------------------------------------------------------------------------------

def _replies(source: Any, context: _Context) -> list[Reply]:
    """The replies of a Reply, an iterable of them, an event log or a chat; fills `context` from it."""
    if isinstance(source, Reply):
        return [source]
    if isinstance(source, EventLog):
        header = source.header
        context.system = context.system or _str(header.get("system"))
        context.app = context.app or _str(header.get("app_name"))
        context.session_id = context.session_id or _str(header.get("conversation_id"))
        return replay(source)
    if hasattr(source, "backend") and isinstance(getattr(source, "replies", None), list):  # a Chat or AsyncChat
        app = getattr(source, "app", None)
        context.system = context.system or _str(getattr(source, "system", None))
        context.app = context.app or _str(getattr(app, "name", None))
        context.user_id = context.user_id or _str(getattr(source, "user_id", None))
        context.session_id = context.session_id or _str(getattr(source, "conversation_id", None))
        return list(source.replies)
    if isinstance(source, str | bytes) or not isinstance(source, Iterable):
        raise TypeError(f"to_spans() takes a Reply, replies, a chat, an event log or evaluation results, "
                        f"not {type(source).__name__}")
    replies = list(source)
    for item in replies:
        if not isinstance(item, Reply):
            raise TypeError(f"to_spans() takes replies; got a {type(item).__name__} among them")
    return replies


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_evaluation(source: Any) -> bool:
    return all(hasattr(source, name) for name in ("rows", "records", "replies", "repeats"))


def to_spans(source: Any, *, system: str | None = None, app: str | None = None, user_id: str | None = None,
             session_id: str | None = None, evaluation: str = "evaluation", redact: Redact | None = None,
             max_value: int = MAX_VALUE, max_spans: int = MAX_SPANS, project: str | None = None) -> list[ReadableSpan]:
    """OpenTelemetry SDK spans of `source`: a Reply, replies, a Chat or AsyncChat, an event log
    (`load_events`) or evaluation results, one trace per execution (per row for an evaluation,
    its root tagged with `evaluation`, the row and its scores). `system`, `app`, `user_id` and
    `session_id` fill in what the source does not say. `redact(key, value)` sees every attribute
    first (None leaves it out); values are cut to `max_value` characters, a trace to `max_spans`
    spans and events. `project`: the Phoenix project the spans land in."""
    otel = _otel()
    if max_spans < 1:
        raise ValueError(f"max_spans must be at least 1 (a trace's root), got {max_spans!r}")
    options = _Options(redact=redact, max_value=max(int(max_value), 0), max_spans=int(max_spans))
    resource = otel.Resource.create({"service.name": "atomemo-notebook", "service.version": __version__,
                                     **({"openinference.project.name": project} if project else {})})
    scope = otel.InstrumentationScope("atomemo_notebook", __version__)
    context = _Context(system, app, user_id, session_id)
    spans: list[ReadableSpan] = []
    if _is_evaluation(source):
        context.system = context.system or _str(getattr(source, "system", None))
        for record, replies in zip(list(source.records), list(source.replies), strict=False):
            if replies:
                spans.extend(_row_spans(otel, record, replies, context, options, resource, scope, evaluation))
        return spans
    for reply in _replies(source, context):
        trace = _Trace(otel, _trace_key(reply), options, resource, scope)
        _reply_spans(trace, reply, context, None, "")
        spans.extend(trace.spans)
    return spans


def _row_spans(otel: _Modules, record: Mapping[str, Any], replies: Sequence[Reply], context: _Context,
               options: _Options, resource: Any, scope: Any, evaluation: str) -> list[ReadableSpan]:
    """One trace per evaluation row: a root tagged with the run, the row and its scores, each of
    the row's replies under it."""
    row, key, repeat = record.get("row"), str(record.get("key") or ""), record.get("repeat") or 0
    trace = _Trace(otel, ["atomemo-notebook", "evaluation", evaluation, key, str(row), str(repeat)],
                   options, resource, scope)
    root_id = trace.span_id("row")
    trace.take()
    times = [_reply_spans(trace, reply, context, root_id, f"reply {i}") for i, reply in enumerate(replies)]
    attrs = otel.SpanAttributes
    scores = {str(k)[len("score_"):]: v for k, v in list(record.items())
              if str(k).startswith("score_") and k != "score_errors"}
    scores = dict(list(scores.items())[:MAX_SCORES])
    metadata = {"evaluation": evaluation, "row": row, "key": key, "repeat": repeat, "scores": scores}
    root: dict[str, Any] = {
        attrs.OPENINFERENCE_SPAN_KIND: "CHAIN", "langfuse.observation.type": "chain",
        attrs.TAG_TAGS: [evaluation], "langfuse.trace.tags": [evaluation], attrs.METADATA: metadata,
        "atomemo.evaluation.name": evaluation, "atomemo.evaluation.row": row, "atomemo.evaluation.key": key,
        "atomemo.evaluation.repeat": repeat, "atomemo.evaluation.status": record.get("status"),
        "atomemo.evaluation.expected": record.get("expected"), "atomemo.system": context.system,
        attrs.INPUT_VALUE: record.get("query"), attrs.OUTPUT_VALUE: record.get("answer"),
        attrs.SESSION_ID: record.get("conversation_id"), attrs.USER_ID: context.user_id,
    }
    for name, value in scores.items():
        plain = value if isinstance(value, bool | int | float | str) else _json(value)
        root[f"atomemo.evaluation.score.{_cut(name, MAX_NAME)}"] = plain
    failed = record.get("status") == "failed"
    trace.add(f"evaluate {evaluation} row {row}", root_id, None, min(t[0] for t in times), max(t[1] for t in times),
              root, trace.status(failed, record.get("status") == "succeeded", _str(record.get("error"))))
    trace.spans.insert(0, trace.spans.pop())
    return trace.spans


def _traces_url(endpoint: str | None) -> str | None:
    """The receiver's OTLP/HTTP traces URL: a base URL (Phoenix's `http://127.0.0.1:6006`,
    Langfuse's `.../api/public/otel`) gets `/v1/traces`; None: OpenTelemetry's environment."""
    if endpoint is None:
        return None
    path = urlsplit(endpoint).path
    return endpoint if path.rstrip("/").endswith(TRACES_PATH) else endpoint.rstrip("/") + TRACES_PATH


def export_spans(source: Any, *, endpoint: str | None = None, headers: Mapping[str, str] | None = None,
                 timeout: float = 10.0, **options: Any) -> int:
    """Send `source`'s spans (see `to_spans`, which takes the same options; or spans already
    made) to an OTLP/HTTP receiver: Phoenix (`http://127.0.0.1:6006`), Langfuse
    (`https://cloud.langfuse.com/api/public/otel` with its Basic `Authorization` header),
    Jaeger or Tempo (`http://host:4318`). Returns how many spans went; SpanExportError if the
    receiver did not take them. The headers go to the receiver only, never into a span."""
    otel = _otel()
    if isinstance(source, list | tuple) and source and all(isinstance(s, otel.ReadableSpan) for s in source):
        spans = list(source)
    else:
        spans = to_spans(source, **options)
    url = _traces_url(endpoint)
    exporter = otel.OTLPSpanExporter(endpoint=url, headers=dict(headers) if headers else None, timeout=timeout)
    try:
        for start in range(0, len(spans), BATCH):
            batch = spans[start:start + BATCH]
            if exporter.export(batch) is not otel.SpanExportResult.SUCCESS:
                raise SpanExportError(f"the OTLP receiver at {url or 'the OTEL_EXPORTER_OTLP_* endpoint'} did not "
                                      f"take {len(batch)} spans ({start} were sent before); its log says why")
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
    return len(spans)
