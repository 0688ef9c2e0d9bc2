"""Dify's stream events -> the neutral events. The only place that reads Dify's event names
and fields on behalf of the fold. It keeps a little state per reply: whether the message was
announced, which message it is (an event of another message is dropped, and said), and which
Loop/Iteration run a node id stands for (children name the container's node id, the fold wants
its run)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import _neutral as n
from .._wire import Event, MalformedFrame
from ._forms import read_form
from .events import Name

__all__ = ["DifyTranslator", "MessageIds", "node_status", "run_status"]

NONE: tuple[n.Neutral, ...] = ()
MAX_ATTEMPTS = 1_000  # attempts of one node run shown as runs of their own; a server may send any number
CONTAINERS = {Name.ITERATION_STARTED, Name.LOOP_STARTED}


def run_status(status: Any) -> str:
    """A workflow run's status in our vocabulary (partial success is a success with exceptions)."""
    text = str(status or "")
    if text in ("succeeded", "partial-succeeded"):
        return "succeeded"
    return text if text in ("failed", "stopped") else "failed"


def node_status(status: Any) -> str:
    text = str(status or "")
    if text == "succeeded":
        return "succeeded"
    if text in ("stopped", "running"):
        return text
    return "failed"  # failed, exception


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tokens(data: dict[str, Any]) -> int | None:
    meta = _dict(data.get("execution_metadata"))
    value = meta.get("total_tokens", data.get("total_tokens"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


class MessageIds:
    """Which message a stream answers: the first `message_id` and `conversation_id` its events
    name. Every event of one stream names the same ones; an event that names others belongs to
    another message and must not be merged into this one (the translator and the stream's
    recovery state both ask here, so they agree on what is this message's)."""

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.conversation_id: str | None = None

    def claim(self, frame: dict[str, Any]) -> str | None:
        """None if the event is this message's (its ids adopted when first named), else why not."""
        for key in ("message_id", "conversation_id"):
            theirs, ours = frame.get(key), getattr(self, key)
            if ours is not None and theirs is not None and theirs != "" and theirs != ours:
                return f"its {key} is {str(theirs)[:80]!r}, not {ours!r}"
        message_id, conversation_id = _str(frame.get("message_id")), _str(frame.get("conversation_id"))
        if self.message_id is None and message_id:
            self.message_id = message_id
        if self.conversation_id is None and conversation_id:
            self.conversation_id = conversation_id
        return None


class DifyTranslator:
    def __init__(self) -> None:
        self.announced = False
        self.ids = MessageIds()
        self.containers: dict[str, str] = {}  # node id of a running Loop/Iteration -> its run id
        self.run_id: str | None = None
        self.chat_text = False  # the answer came as `message` chunks (a chat), not `text_chunk`s
        self.workflow_app = False  # the stream is a workflow app's run (no message, no conversation)
        self.think = ThinkSplitter()  # `<think>` blocks inside the answer: thinking, not answer
        # A node run retried: its attempt now and the seconds its failed attempts took.
        self.attempts: dict[str, tuple[int, float]] = {}
        self.over: set[str] = set()  # node runs retried past MAX_ATTEMPTS (said once)
        # Folding a run that paused and went on: text it streamed while nobody listened is only
        # in its end's outputs, so the answer there is the whole one.
        self.resumed = False
        self.asked = False  # a form was asked for (human_input_required) in this stream

    def __call__(self, event: Event) -> Sequence[n.Neutral]:
        name = event.event
        if type(event) is MalformedFrame:
            return (n.Anomaly(f"malformed frame: {event.error}"),)
        frame = event.data or {}
        foreign = self.ids.claim(frame)
        if foreign is not None:
            return (n.Anomaly(f"a {str(name)[:40]} event of another message was dropped: {foreign}"),)
        out: list[n.Neutral] = []
        message_id = _str(frame.get("message_id"))
        if not self.announced and message_id:
            self.announced = True
            out.append(n.Started(message_id, _str(frame.get("conversation_id")), _str(frame.get("task_id"))))
        elif not self.announced and name == Name.WORKFLOW_STARTED and not _str(frame.get("conversation_id")):
            # A workflow app's run names no message (a chatflow's every frame does): the run is
            # the message, and its outputs are its result (protocol/dify/_workflow_app.py).
            run_id = _str(frame.get("workflow_run_id")) or _str(_dict(frame.get("data")).get("id"))
            if run_id:
                self.announced = self.workflow_app = True
                out.append(n.Started(run_id, None, _str(frame.get("task_id"))))
        handler = _TABLE.get(name)
        if handler is not None:
            out.extend(handler(self, frame, _dict(frame.get("data"))))
        return out

    # -- the answer ------------------------------------------------------------------------
    def _message(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        answer = frame.get("answer")
        if answer is not None and not isinstance(answer, str):
            return (_not_text(frame, answer),)
        if answer:
            self.chat_text = True
            return self.think.split(answer)
        return NONE

    def _text_chunk(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        text = data.get("text")
        return self.think.split(text) if isinstance(text, str) and text else NONE

    def _reasoning(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        # The spec puts the fields in `data`; a server that sends them beside it is read too.
        text = data.get("reasoning", frame.get("reasoning"))
        final = data.get("is_final", frame.get("is_final")) is True
        node = _str(data.get("node_id", frame.get("node_id")))
        if text is not None and not isinstance(text, str):
            return (n.Anomaly(f"a reasoning_chunk whose reasoning is not text: {type(text).__name__}"),)
        return (n.Reasoning(node, text or "", final),) if text or final else NONE

    def _replace(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        answer = frame.get("answer", data.get("text"))
        if answer is not None and not isinstance(answer, str):
            return (_not_text(frame, answer),)
        return (n.TextReplaced(answer or "", _str(frame.get("reason"))),)

    def _file(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        return (n.Files(({"id": frame.get("id"), "type": frame.get("type"), "url": frame.get("url"),
                          "belongs_to": frame.get("belongs_to")},)),)

    def _end(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        held = self.think.flush()  # a tag cut short at the very end is text after all
        return (*held, *self._ended(frame, data))

    def _ended(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        meta = _dict(frame.get("metadata"))
        out: list[n.Neutral] = []
        usage = _dict(meta.get("usage"))
        if usage:
            price = usage.get("total_price")
            cost = float(price) if isinstance(price, int | float | str) and _number(price) else None
            out.append(n.Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                               usage.get("total_tokens"), cost, _str(usage.get("currency"))))
        resources = meta.get("retriever_resources")
        if isinstance(resources, list) and resources:
            out.append(n.Citations(tuple(_citation(r) for r in resources if isinstance(r, dict))))
        out.append(n.MessageEnded())
        return out

    def _error(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        status = frame.get("status")
        return (n.Failed(str(frame.get("code") or "error"), str(frame.get("message") or "the answer failed"),
                         status if isinstance(status, int) else None),)

    # -- the run ---------------------------------------------------------------------------
    def _run_started(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        run_id = _str(frame.get("workflow_run_id")) or _str(data.get("id")) or "run"
        if data.get("reason") == "resumption" or self.run_id == run_id:
            # The same run again, after its pause: it goes on in the same turn.
            self.run_id, self.resumed = run_id, True
            return (n.RunResumed(run_id),)
        self.run_id = run_id
        return (n.RunStarted(self.run_id, "running", version_id=_str(data.get("workflow_id"))),)

    def _input_required(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        self.asked = True
        form = read_form(data)
        out: list[n.Neutral] = [form]
        if form.refused:
            out.append(n.Anomaly(form.refused))
        return out

    def _input_ended(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        timeout = frame.get("event") == Name.HUMAN_INPUT_FORM_TIMEOUT
        text = data.get("rendered_content")
        return (n.InputEnded(str(data.get("node_id") or ""), "timeout" if timeout else "filled",
                             text[:100_000] if isinstance(text, str) else None, _str(data.get("action_text"))),)

    def _run_finished(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        run_id = _str(frame.get("workflow_run_id")) or self.run_id or "run"
        status = run_status(data.get("status"))
        out: list[n.Neutral] = []
        outputs = data.get("outputs")
        if status != "succeeded" and self.chat_text and isinstance(outputs, dict):
            # Dify streams an answer node's literal text ahead of the node, so a run that failed
            # or was stopped has streamed text of nodes that never ran ("Got: "). Its outputs'
            # answer is what the answer nodes that ran said: that is the answer.
            kept = outputs.get("answer")
            out.append(n.TextReplaced(kept if isinstance(kept, str) else "",
                                      f"the run {status}: text streamed ahead by answer nodes that never ran "
                                      "was dropped"))
        elif self.resumed and isinstance(outputs, dict) and isinstance(outputs.get("answer"), str) \
                and outputs["answer"]:
            whole: str = outputs["answer"]
            if whole.startswith(ThinkSplitter.OPEN) and ThinkSplitter.CLOSE in whole:  # thinking stays apart
                whole = whole.split(ThinkSplitter.CLOSE, 1)[1]
            out.append(n.TextReplaced(whole))
        if self.workflow_app and isinstance(outputs, dict):
            out.append(n.Outputs(outputs))
        out.append(n.RunFinished(run_id, status, _str(data.get("error"))))
        return out

    def _run_paused(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        run_id = _str(frame.get("workflow_run_id")) or _str(data.get("workflow_run_id")) or self.run_id or "run"
        nodes = data.get("paused_nodes")
        waiting = tuple(str(x) for x in nodes[:100] if isinstance(x, str)) if isinstance(nodes, list) else ()
        out: list[n.Neutral] = []
        reasons = data.get("reasons")
        if not self.asked and isinstance(reasons, list):
            # A run's state snapshot (a paused run reopened) names its form only here.
            for reason in reasons[:20]:
                if isinstance(reason, dict) and reason.get("TYPE") == Name.HUMAN_INPUT_REQUIRED:
                    out.extend(self._input_required(frame, reason))
                    break
        out.append(n.RunPaused(run_id, waiting))
        return out

    def _parent(self, data: dict[str, Any]) -> str | None:
        container = _str(data.get("iteration_id")) or _str(data.get("loop_id"))
        return self.containers.get(container) if container else None

    def _node_started(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        run_id, node_id = str(data.get("id") or ""), str(data.get("node_id") or "")
        if frame.get("event") in CONTAINERS:
            self.containers[node_id] = run_id
        return (n.NodeStarted(run_id, node_id, _str(data.get("title")), _str(data.get("node_type")),
                              parent_run_id=self._parent(data), inputs=data.get("inputs"),
                              predecessor_id=_str(data.get("predecessor_node_id"))),)

    def _node_finished(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        run_id, node_id = str(data.get("id") or ""), str(data.get("node_id") or "")
        elapsed = _seconds(data.get("elapsed_time"))
        attempt, spent = self.attempts.pop(run_id, (1, 0.0))
        if attempt > 1:  # the node's elapsed time covers every attempt: the last one's is the rest
            run_id = _attempt(run_id, attempt)
            elapsed = max(elapsed - spent, 0.0) if elapsed is not None else None
        return (n.NodeFinished(run_id, node_id, node_status(data.get("status")), data.get("outputs"),
                               _str(data.get("error")), (), data.get("inputs"), data.get("process_data"),
                               _tokens(data), elapsed, _str(data.get("title")), _str(data.get("node_type"))),)

    def _retry(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        # Each attempt is a run of its node (as Pipelit's are): the attempt that failed ends
        # here, and the next begins. node_retry names the node's run id, not the attempt's.
        first, node_id = str(data.get("id") or ""), str(data.get("node_id") or "")
        attempt, spent = self.attempts.get(first, (1, 0.0))
        if attempt >= MAX_ATTEMPTS:
            if first in self.over:
                return NONE
            self.over.add(first)
            return (n.Anomaly(f"node {node_id[:80]!r} retried past {MAX_ATTEMPTS:,} attempts: "
                              "later attempts are shown as its last"),)
        elapsed = _seconds(data.get("elapsed_time"))
        self.attempts[first] = (attempt + 1, spent + (elapsed or 0.0))
        ended = _attempt(first, attempt)
        return (n.NodeFinished(ended, node_id, "failed", data.get("outputs"), _str(data.get("error")), (),
                               data.get("inputs"), data.get("process_data"), _tokens(data), elapsed,
                               _str(data.get("title")), _str(data.get("node_type"))),
                n.NodeStarted(_attempt(first, attempt + 1), node_id, _str(data.get("title")),
                              _str(data.get("node_type")), parent_run_id=self._parent(data)))

    def _next(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        index = data.get("index")
        run_id = str(data.get("id") or "")
        return (n.IterationNext(run_id, index),) if isinstance(index, int) else NONE

    # -- tools -----------------------------------------------------------------------------
    def _agent_log(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        # Each entry is a node of the agent's log tree (its details), nested by parent_id; a
        # root entry (a round, a call) is also a step of the agent's run on the timeline.
        call_id, label = str(data.get("id") or ""), str(data.get("label") or "agent step")
        parent, status = _str(data.get("node_execution_id")), str(data.get("status") or "")
        entry = n.AgentLogged(call_id, label, status, _str(data.get("parent_id")), data.get("data"),
                              _str(data.get("error")), _str(data.get("node_id")), parent)
        if entry.parent_id is not None:
            return (entry,)
        if status == "start":
            return (n.ToolStarted(call_id, label, data.get("data"), parent_run_id=parent), entry)
        return (n.ToolFinished(call_id, label, data.get("data"), _str(data.get("error")),
                               parent_run_id=parent), entry)

    def _thought(self, frame: dict[str, Any], data: dict[str, Any]) -> Sequence[n.Neutral]:
        tool = _str(frame.get("tool"))
        if tool is None:
            return NONE
        call_id = str(frame.get("id") or "")
        out: list[n.Neutral] = [n.ToolStarted(call_id, tool, frame.get("tool_input"))]
        if frame.get("observation"):
            out.append(n.ToolFinished(call_id, tool, frame.get("observation")))
        return out


class ThinkSplitter:
    """Splits a streamed answer that opens with `<think>` ... `</think>` (how many models send
    their reasoning through Dify's answer): inside is thinking, after it the answer. The answer's
    text is never held back: the start of a possible tag goes out as text at once and is taken
    back (TextReplaced) when the tag completes, so a stream that breaks loses nothing. Written
    here because it is one small state machine over a stream, which no parser library offers
    for partial input."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.state = "start"  # start (all so far may open a tag) | inside | after
        self.prefix = ""  # at the start: what was sent as text and may yet be a tag
        self.held = ""  # inside: the start of what may be the closing tag

    def split(self, chunk: str) -> Sequence[n.Neutral]:
        if self.state == "after":
            return (n.Text(chunk),)  # the common case, after the first chunk: no work
        if self.state == "start":
            candidate = self.prefix + chunk
            if candidate.startswith(self.OPEN):
                taken = (n.TextReplaced(""),) if self.prefix else ()
                self.state, self.prefix = "inside", ""
                return (*taken, *self._inside(candidate[len(self.OPEN):]))
            if self.OPEN.startswith(candidate):
                self.prefix = candidate  # still maybe a tag: sent as text meanwhile
                return (n.Text(chunk),)
            self.state, self.prefix = "after", ""
            return (n.Text(chunk),)
        return self._inside(chunk)

    def _inside(self, chunk: str) -> Sequence[n.Neutral]:
        text, self.held = self.held + chunk, ""
        at = text.find(self.CLOSE)
        if at >= 0:
            self.state = "after"
            rest = text[at + len(self.CLOSE):]
            return (n.Reasoning(None, text[:at], True), *((n.Text(rest),) if rest else ()))
        keep = next((k for k in range(min(len(self.CLOSE) - 1, len(text)), 0, -1)
                     if self.CLOSE.startswith(text[-k:])), 0)
        self.held = text[len(text) - keep:] if keep else ""
        body = text[:len(text) - keep] if keep else text
        return (n.Reasoning(None, body, False),) if body else ()

    def flush(self) -> Sequence[n.Neutral]:
        """At the answer's end: thinking cut short keeps what was held of it."""
        held, self.held = self.held, ""
        return (n.Reasoning(None, held, False),) if held and self.state == "inside" else ()


def _attempt(run_id: str, attempt: int) -> str:
    """The run id of a node run's n-th attempt: the first is the run Dify names."""
    return run_id if attempt == 1 else f"{run_id}#attempt{attempt}"


def _not_text(frame: dict[str, Any], answer: Any) -> n.Anomaly:
    return n.Anomaly(f"a {str(frame.get('event'))[:40]} event whose answer is a {type(answer).__name__}, "
                     "not text, was dropped")


def _number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _citation(resource: dict[str, Any]) -> n.Citation:
    score = resource.get("score")
    return n.Citation(
        title=str(resource.get("document_name") or resource.get("dataset_name") or "source"),
        snippet=_str(resource.get("content")),
        url=_str(resource.get("url")),
        score=float(score) if isinstance(score, int | float) and math.isfinite(score) else None,
        source=_str(resource.get("dataset_name")),
    )


_TABLE: dict[str, Any] = {
    Name.MESSAGE: DifyTranslator._message,
    Name.AGENT_MESSAGE: DifyTranslator._message,
    Name.TEXT_CHUNK: DifyTranslator._text_chunk,
    Name.REASONING_CHUNK: DifyTranslator._reasoning,
    Name.MESSAGE_REPLACE: DifyTranslator._replace,
    Name.TEXT_REPLACE: DifyTranslator._replace,
    Name.MESSAGE_FILE: DifyTranslator._file,
    Name.MESSAGE_END: DifyTranslator._end,
    Name.ERROR: DifyTranslator._error,
    Name.WORKFLOW_STARTED: DifyTranslator._run_started,
    Name.WORKFLOW_FINISHED: DifyTranslator._run_finished,
    Name.WORKFLOW_PAUSED: DifyTranslator._run_paused,
    Name.HUMAN_INPUT_REQUIRED: DifyTranslator._input_required,
    Name.HUMAN_INPUT_FORM_FILLED: DifyTranslator._input_ended,
    Name.HUMAN_INPUT_FORM_TIMEOUT: DifyTranslator._input_ended,
    Name.NODE_STARTED: DifyTranslator._node_started,
    Name.ITERATION_STARTED: DifyTranslator._node_started,
    Name.LOOP_STARTED: DifyTranslator._node_started,
    Name.NODE_FINISHED: DifyTranslator._node_finished,
    Name.ITERATION_COMPLETED: DifyTranslator._node_finished,
    Name.LOOP_COMPLETED: DifyTranslator._node_finished,
    Name.NODE_RETRY: DifyTranslator._retry,
    Name.ITERATION_NEXT: DifyTranslator._next,
    Name.LOOP_NEXT: DifyTranslator._next,
    Name.AGENT_LOG: DifyTranslator._agent_log,
    Name.AGENT_THOUGHT: DifyTranslator._thought,
    Name.RECOVERED: lambda self, frame, data: (n.Recovered(str(frame.get("status") or "failed"),
                                                            frame.get("answer")),),
}
