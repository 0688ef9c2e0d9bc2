"""The one OdysseyAI chat call (no I/O): what it sends and how its answer is read.

The published reference describes the body's fields (workspace, conversation, message,
agent, a flag to disable memory, a first-message flag) without spelling their names; the
names below are this package's reading of it, kept here alone so a correction is one line."""

from __future__ import annotations

import re
from typing import Any

from .._call import Call, require
from .._errors import APIResponseValidationError, excerpt

__all__ = ["BODY", "MAX_MESSAGE_CHARS", "chat_message", "header_safe"]

BODY = {"workspace": "workspaceId", "conversation": "conversationId", "message": "message",
        "agent": "agentId", "no_memory": "disableMemory", "first": "isFirstMessage"}
PATH = "/chat/message"  # under the API root (`.../api`: the dialect adds it to a root URL)
MAX_MESSAGE_CHARS = 100_000
# A 500 may come after the agent ran (and stored the message): asking again could answer twice.
# Only answers that say the request was not taken on are tried again.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_HEADER_SAFE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,254}[\x21-\x7e])?")


def header_safe(name: str, value: Any) -> str:
    """A value sent as a header (userId): printable ASCII, no line breaks, <= 256 characters."""
    text = require(name, value)
    if not _HEADER_SAFE.fullmatch(text):
        raise ValueError(f"{name} is sent as an HTTP header: printable ASCII only, at most 256 characters, "
                         f"got {excerpt(repr(text), 80)}")
    return text


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise APIResponseValidationError(f"expected {{\"data\": {{...}}}}, got: {excerpt(repr(body))}",
                                         status_code=200, body=repr(body)[:2000])
    return data


def chat_message(*, workspace_id: str, conversation_id: str, message: str, user_id: str,
                 agent_id: str | None = None, memory: bool = True, first: bool = False,
                 timeout: float | None = None) -> Call[dict[str, Any]]:
    """Send `message`; the answer is the document's `data`, whole."""
    if not isinstance(message, str) or not message.strip():
        raise ValueError("message must not be empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValueError(f"message is {len(message):,} characters; at most {MAX_MESSAGE_CHARS:,} are sent")
    body: dict[str, Any] = {BODY["workspace"]: require("workspace_id", workspace_id),
                            BODY["conversation"]: require("conversation_id", conversation_id),
                            BODY["message"]: message, BODY["no_memory"]: not memory, BODY["first"]: first}
    if agent_id:
        body[BODY["agent"]] = agent_id
    return Call("POST", PATH, _data, json=body, headers={"userId": header_safe("user_id", user_id)},
                timeout=timeout, retry_statuses=RETRY_STATUSES)
