"""Dify's Human Input forms (1.13+): a paused run's form read from `human_input_required`
(bounded, every field checked), the tokens that answer forms (kept here, in the kernel, never
in an event, a record or the browser), and the calls that answer a form and read a run's events.

The 2026 service API serves `POST /v1/form/human_input/{token}` and
`GET /v1/workflow/{run_id}/events`; Dify 1.13.2 serves the form only on its web-app API
(`/api/form/human_input/{token}`, unauthenticated): the submit tries the first and, where it is
404, the second."""

from __future__ import annotations

import collections
import math
import threading
from typing import Any
from urllib.parse import quote

from .. import _neutral as n
from .._call import Call, require
from .._errors import APIResponseValidationError
from .._forms import MAX_VALUE, check_answer
from .._log import register_secret

__all__ = [
    "FORM_TOKENS",
    "MAX_ACTIONS",
    "MAX_CONTENT",
    "MAX_FIELDS",
    "Form",
    "FormTokens",
    "check_answer",
    "passport",
    "read_form",
    "run_snapshot",
    "submit_form",
    "web_root",
    "web_workflow_events",
    "workflow_events",
]

MAX_FIELDS = 200  # inputs one form may have: a form with more is shown refused, never answered
MAX_ACTIONS = 20
MAX_CONTENT = 100_000  # characters of a form's markdown kept
MAX_TOKENS = 1_000  # tokens remembered (the newest forms'); an older form cannot be answered from here
FIELD_TYPES = {"text_input": "text", "text-input": "text", "paragraph": "paragraph", "select": "select",
               "number": "number"}


class FormTokens:
    """form id -> the token that answers it, for the newest MAX_TOKENS forms. The event parser
    puts each token here as it redacts it from the frame; only `submit` reads it back."""

    def __init__(self, size: int = MAX_TOKENS) -> None:
        self._tokens: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def remember(self, form_id: Any, token: str) -> None:
        if not isinstance(form_id, str) or not form_id or len(form_id) > 200:
            return
        with self._lock:
            self._tokens.pop(form_id, None)
            self._tokens[form_id] = token
            while len(self._tokens) > self._size:
                self._tokens.popitem(last=False)

    def token(self, form_id: str) -> str | None:
        with self._lock:
            return self._tokens.get(form_id)

    def __repr__(self) -> str:  # never the tokens
        return f"FormTokens({len(self._tokens)} forms)"


FORM_TOKENS = FormTokens()


Form = n.InputRequested  # a paused run's form: what the widget draws and `respond()` checks against


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _field(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    name = _text(item.get("output_variable_name") or item.get("variable"))
    if not name:
        return None
    default = item.get("default")
    value = default.get("value") if isinstance(default, dict) else default
    options = item.get("options")
    return {"name": name, "type": FIELD_TYPES.get(str(item.get("type")), "text"),
            "default": value[:MAX_VALUE] if isinstance(value, str) else None,
            "options": [_text(o) for o in options[:MAX_ACTIONS] if isinstance(o, str)]
            if isinstance(options, list) else []}


def read_form(data: dict[str, Any]) -> Form:
    """A `human_input_required` event's `data` (or a `workflow_paused` reason) as a Form.
    Never raises: what cannot be read is left out, and a form too big to answer says so."""
    inputs, actions = data.get("inputs"), data.get("actions")
    inputs = inputs if isinstance(inputs, list) else []
    actions = actions if isinstance(actions, list) else []
    refused = None
    if len(inputs) > MAX_FIELDS:
        refused = (f"the form has {len(inputs):,} inputs; at most {MAX_FIELDS} are read, so it cannot be "
                   "answered from here (answer it in Dify's web app)")
    if len(actions) > MAX_ACTIONS:
        refused = refused or (f"the form has {len(actions):,} actions; at most {MAX_ACTIONS} are read, "
                              "so it cannot be answered from here")
    fields = tuple(f for f in (_field(i) for i in inputs[:MAX_FIELDS]) if f is not None)
    read = ({"id": _text(a.get("id")), "title": _text(a.get("title")) or _text(a.get("id")),
             "style": _text(a.get("button_style"), 20) or "default"}
            for a in actions[:MAX_ACTIONS] if isinstance(a, dict))
    expires = data.get("expiration_time")
    return Form(form_id=_text(data.get("form_id")), node_id=_text(data.get("node_id")),
                node_title=_text(data.get("node_title")) or "Human input",
                content=_text(data.get("form_content"), MAX_CONTENT),
                fields=fields, actions=tuple(a for a in read if a["id"]),
                expires_at=float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool)
                and math.isfinite(expires) else None, refused=refused)


def _any(body: Any) -> Any:
    return body


def web_root(base_url: str) -> str:
    """The server's root, where the web-app API (`/api`) lives beside the service API (`/v1`)."""
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def submit_form(token: str, *, inputs: dict[str, str], action: str, user: str,
                web_base: str | None = None) -> Call[Any]:
    """Answer a form: on the service API (2026), or with `web_base` on the web-app API (1.13.2:
    no key is sent there, and no user: the token names the form)."""
    path = f"/form/human_input/{quote(require('token', token), safe='')}"
    if web_base is not None:
        return Call("POST", f"{web_base}/api{path}", _any, json={"inputs": inputs, "action": action},
                    needs_key=False, absolute=True, retry_statuses=frozenset())
    return Call("POST", path, _any, json={"inputs": inputs, "action": action, "user": require("user", user)},
                retry_statuses=frozenset())


def passport(web_base: str, app_code: str, user: str) -> Call[str]:
    """A web-app passport for `user` (Dify 1.13's `GET /api/passport`): what its run event
    stream asks for. A credential: registered with the logs' redaction, never kept elsewhere."""
    def parse(body: Any) -> str:
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise APIResponseValidationError("the passport answer has no access_token", status_code=200,
                                             body=repr(body)[:200])
        register_secret(token)
        return token

    return Call("GET", f"{web_base}/api/passport", parse, params={"user_id": require("user", user)},
                headers={"X-App-Code": app_code}, needs_key=False, absolute=True)


def web_workflow_events(web_base: str, app_code: str, passport: str, run_id: str) -> Call[Any]:
    """A run's events on the web-app API (Dify 1.13.2), followed live."""
    return Call("GET", f"{web_base}/api/workflow/{quote(require('run_id', run_id), safe='')}/events", _any,
                headers={"X-App-Code": app_code, "X-App-Passport": passport}, needs_key=False, absolute=True,
                stream=True)


def run_snapshot(run_id: str, user: str) -> Call[Any]:
    """A run's state as a stream, ending where it pauses: what reopens a paused run."""
    return workflow_events(run_id, user, snapshot=True, continue_on_pause=False)


def workflow_events(run_id: str, user: str, *, snapshot: bool = False, continue_on_pause: bool = True) -> Call[Any]:
    """A run's events as a stream (2026 service API): with `snapshot`, its state so far first."""
    return Call("GET", f"/workflow/{quote(require('run_id', run_id), safe='')}/events", _any,
                params={"user": require("user", user), "include_state_snapshot": str(snapshot).lower(),
                        "continue_on_pause": str(continue_on_pause).lower()}, stream=True)
