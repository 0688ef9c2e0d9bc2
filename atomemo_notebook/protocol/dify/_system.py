"""Dify's chat apps, as one unit."""

from __future__ import annotations

from .. import _neutral as n
from .._system import Setting, System
from ._adapter import DifyTranslator
from ._dialect import DIFY
from ._workflow_app import APP_TYPES, WORKFLOW_DEMO, dify_backend

NO_BRANCHING = ("Dify's service API takes no parent message (POST /v1/chat-messages has no "
                "parent_message_id): a question always continues the conversation's last message, "
                "so regenerate and edit are not possible")

SYSTEM = System(
    name="dify",
    label="Dify",
    dialect=DIFY,
    translator=DifyTranslator,
    backend=dify_backend,
    # A chatflow (chat) or a workflow app: what the app is, not where; offline, the demo's workflow app.
    settings=(Setting("app_type", points=False, choices=APP_TYPES, demos=(("workflow", WORKFLOW_DEMO),)),
              # Dify 1.13's web-app code (the app's share link ends with it): with it, the run's event
              # stream on the web-app API follows a run after its form is answered (the service API
              # has none there).
              Setting("web_app_code")),
    # resume=False: not promised, since it depends on the server. A dropped stream is resumed from
    # the run's event stream where the server has it (the 2026 API), else finished from the stored
    # message (Dify 1.13): tried in that order, every time (transport/_dify.py).
    capabilities=n.Capabilities(token_streaming=True, stop="server", branching=False, files=True, resume=False,
                                citations=True, suggestions=True, branching_reason=NO_BRANCHING,
                                human_input=True, feedback=True),
)
