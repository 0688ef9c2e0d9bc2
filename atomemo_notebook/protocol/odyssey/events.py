"""OdysseyAI answers a chat message with one JSON document (`{"data": {...}}`): no stream.
This client writes two events per reply so the fold, the event log and replay work as for
every system: `_request_sent` when the POST leaves (the wait begins), and `response`, the
document's `data` whole, when it comes back."""

from __future__ import annotations

import json

from .._wire import Event, MalformedFrame

__all__ = ["DATA_FIELDS", "SNIP_FIELDS", "STEP_FIELDS", "Name", "parse_document"]


class Name:
    RESPONSE = "response"  # the document's `type`
    # Added by this client, never sent by OdysseyAI:
    REQUEST = "_request_sent"  # {request_id, conversation_id, workspace_id, agent_id, first}


# The fields of the published schema, for the contract test of the emulator.
DATA_FIELDS = frozenset({"id", "query", "agentid", "createdat", "dislikes", "likes", "rootAgentName",
                         "stepsBreakdown", "suggested_files", "followUps", "sourceSnips", "type"})
STEP_FIELDS = frozenset({"agentname", "content", "external", "step_id", "type"})
SNIP_FIELDS = frozenset({"chunkid", "content", "displaytext", "filename", "filetype", "url"})

_decode = json.JSONDecoder().decode


def parse_document(text: str) -> Event:
    """A whole answer body -> the `response` event carrying its `data`. Never raises."""
    try:
        obj = _decode(text)
        data = obj["data"]
    except (ValueError, TypeError, KeyError) as exc:
        return MalformedFrame(MalformedFrame.NAME, {"raw": text[:2000], "error": f"{type(exc).__name__}: {exc}"})
    if not isinstance(data, dict):
        return MalformedFrame(MalformedFrame.NAME, {"raw": text[:2000], "error": "'data' is not an object"})
    return Event(Name.RESPONSE, data)
