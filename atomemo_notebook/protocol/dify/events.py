"""Dify's stream events, from its task pipeline's entities (api/core/app/entities/
task_entities.py): every data frame is one JSON object whose `event` names it; the chat
stream adds `conversation_id`, `message_id`, `created_at` and `task_id` to each. Keep-alives
are a bare `event: ping` block with no data (the SSE decoder counts them as life)."""

from __future__ import annotations

import json
from typing import Any

from .._log import register_secret
from .._wire import Event, MalformedFrame
from ._forms import FORM_TOKENS

__all__ = ["FIELDS", "REDACTED", "Name", "parse_frame", "redact_secrets"]


class Name:
    MESSAGE = "message"
    AGENT_MESSAGE = "agent_message"
    MESSAGE_FILE = "message_file"
    MESSAGE_END = "message_end"
    MESSAGE_REPLACE = "message_replace"
    AGENT_THOUGHT = "agent_thought"
    AGENT_LOG = "agent_log"
    WORKFLOW_STARTED = "workflow_started"
    WORKFLOW_FINISHED = "workflow_finished"
    NODE_STARTED = "node_started"
    NODE_FINISHED = "node_finished"
    NODE_RETRY = "node_retry"
    ITERATION_STARTED = "iteration_started"
    ITERATION_NEXT = "iteration_next"
    ITERATION_COMPLETED = "iteration_completed"
    LOOP_STARTED = "loop_started"
    LOOP_NEXT = "loop_next"
    LOOP_COMPLETED = "loop_completed"
    WORKFLOW_PAUSED = "workflow_paused"  # a Human Input node waits for its form (1.13+)
    HUMAN_INPUT_REQUIRED = "human_input_required"
    HUMAN_INPUT_FORM_FILLED = "human_input_form_filled"
    HUMAN_INPUT_FORM_TIMEOUT = "human_input_form_timeout"
    TEXT_CHUNK = "text_chunk"
    REASONING_CHUNK = "reasoning_chunk"  # the model's thinking, streamed (2026 spec)
    TEXT_REPLACE = "text_replace"
    ERROR = "error"
    PING = "ping"
    TTS_MESSAGE = "tts_message"
    TTS_MESSAGE_END = "tts_message_end"
    RECOVERED = "_stream_recovered"  # added by this client: the stored message ends a broken stream


_CHAT = frozenset({"event", "task_id", "conversation_id", "message_id", "created_at"})
_RUN = _CHAT | {"workflow_run_id", "data"}
_NODE = frozenset({"id", "node_id", "node_type", "title", "index", "predecessor_node_id", "inputs",
                   "inputs_truncated", "created_at", "extras", "iteration_id", "loop_id", "agent_strategy",
                   "parallel_id", "parallel_start_node_id", "parent_parallel_id",
                   "parent_parallel_start_node_id"})
_NODE_DONE = _NODE | {"process_data", "process_data_truncated", "outputs", "outputs_truncated", "status",
                      "error", "elapsed_time", "execution_metadata", "finished_at", "files", "retry_index"}
_CONTAINER = frozenset({"id", "node_id", "node_type", "title", "created_at", "extras", "metadata", "inputs",
                        "inputs_truncated", "index", "pre_loop_output", "outputs", "outputs_truncated",
                        "status", "error", "elapsed_time", "total_tokens", "execution_metadata",
                        "finished_at", "steps"})
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # name: (keys of the frame, keys of its `data`), as Dify's entities define them.
    Name.MESSAGE: (_CHAT | {"id", "answer", "from_variable_selector"}, frozenset()),
    Name.AGENT_MESSAGE: (_CHAT | {"id", "answer"}, frozenset()),
    Name.MESSAGE_FILE: (_CHAT | {"id", "type", "belongs_to", "url"}, frozenset()),
    Name.MESSAGE_END: (_CHAT | {"id", "metadata", "files"}, frozenset()),
    Name.MESSAGE_REPLACE: (_CHAT | {"answer", "reason"}, frozenset()),
    Name.AGENT_THOUGHT: (_CHAT | {"id", "position", "thought", "observation", "tool", "tool_labels",
                                  "tool_input", "message_files"}, frozenset()),
    Name.AGENT_LOG: (_CHAT | {"data"}, frozenset({"node_execution_id", "id", "label", "parent_id", "error",
                                                   "status", "data", "metadata", "node_id"})),
    Name.WORKFLOW_STARTED: (_RUN, frozenset({"id", "workflow_id", "inputs", "created_at",
                                             "sequence_number", "reason"})),
    Name.WORKFLOW_PAUSED: (_RUN, frozenset({"workflow_run_id", "paused_nodes", "outputs", "reasons", "status",
                                            "created_at", "elapsed_time", "total_tokens", "total_steps"})),
    Name.HUMAN_INPUT_REQUIRED: (_RUN, frozenset({"form_id", "node_id", "node_title", "form_content", "inputs",
                                                 "actions", "display_in_ui", "form_token",
                                                 "resolved_default_values", "expiration_time"})),
    Name.HUMAN_INPUT_FORM_FILLED: (_RUN, frozenset({"node_id", "node_title", "rendered_content", "action_id",
                                                    "action_text"})),
    Name.HUMAN_INPUT_FORM_TIMEOUT: (_RUN, frozenset({"node_id", "node_title", "expiration_time"})),
    Name.WORKFLOW_FINISHED: (_RUN, frozenset({"id", "workflow_id", "status", "outputs", "error",
                                              "elapsed_time", "total_tokens", "total_steps", "created_by",
                                              "created_at", "finished_at", "exceptions_count", "files",
                                              "sequence_number"})),
    Name.NODE_STARTED: (_RUN, _NODE),
    Name.NODE_FINISHED: (_RUN, _NODE_DONE),
    Name.NODE_RETRY: (_RUN, _NODE_DONE),
    Name.ITERATION_STARTED: (_RUN, _CONTAINER),
    Name.ITERATION_NEXT: (_RUN, _CONTAINER),
    Name.ITERATION_COMPLETED: (_RUN, _CONTAINER),
    Name.LOOP_STARTED: (_RUN, _CONTAINER),
    Name.LOOP_NEXT: (_RUN, _CONTAINER),
    Name.LOOP_COMPLETED: (_RUN, _CONTAINER),
    # A workflow app's frames name the run, not a message.
    Name.TEXT_CHUNK: (_CHAT | {"data", "workflow_run_id"}, frozenset({"text", "from_variable_selector"})),
    Name.TEXT_REPLACE: (_CHAT | {"data"}, frozenset({"text"})),
    Name.REASONING_CHUNK: (_CHAT | {"data", "workflow_run_id"}, frozenset({"reasoning", "node_id", "is_final"})),
    Name.ERROR: (_CHAT | {"status", "code", "message"}, frozenset()),
    Name.PING: (frozenset({"event"}), frozenset()),
    Name.TTS_MESSAGE: (_CHAT | {"audio"}, frozenset()),
    Name.TTS_MESSAGE_END: (_CHAT | {"audio"}, frozenset()),
}

_decode = json.JSONDecoder().decode
SECRET_FIELDS = frozenset({"form_token"})  # a human-input form's token answers the form: a credential
REDACTED = "[redacted]"
MAX_DEPTH = 32  # a frame nested deeper is not walked for secrets (none of Dify's is)


def _malformed(payload: str, error: str) -> Event:
    return MalformedFrame(MalformedFrame.NAME, {"raw": payload[:2000], "error": error})


def parse_frame(payload: str) -> Event:
    """One data payload -> an Event whose `.data` is the whole frame. Never raises."""
    try:
        obj = _decode(payload)
        name = obj["event"]
    except (ValueError, TypeError, KeyError) as exc:
        return _malformed(payload, f"{type(exc).__name__}: {exc}")
    if not isinstance(name, str) or not isinstance(obj, dict):
        return _malformed(payload, "'event' is not a string")
    if "form_token" in payload:  # the cheap test first: nearly no frame has one
        obj = _redact(obj, 0)
    return Event(name, obj)


def _redact(value: Any, depth: int) -> Any:
    """The frame with every form token replaced: the token answers the form as a key would,
    and events end up in records, saved files, the inspector and the widget. Each token is
    also registered with the logs' redaction, should it travel elsewhere."""
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in SECRET_FIELDS and isinstance(item, str):
                register_secret(item)
                FORM_TOKENS.remember(value.get("form_id"), item)  # kept in the kernel, to answer the form
                out[key] = REDACTED
            else:
                out[key] = _redact(item, depth + 1)
        return out
    if isinstance(value, list):
        return [_redact(item, depth + 1) for item in value]
    return value


def redact_secrets(value: Any) -> Any:
    """`value` (any JSON) with every form token replaced by REDACTED."""
    return _redact(value, 0)
