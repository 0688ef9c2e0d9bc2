"""OdysseyAI's agents, as one unit."""

from __future__ import annotations

from .. import _neutral as n
from .._system import Setting, System
from ._adapter import OdysseyTranslator
from ._backend import OdysseyBackend
from ._dialect import ODYSSEY

NO_BRANCHING = ("OdysseyAI's chat API takes no parent message: each message continues the conversation, "
                "so regenerate and edit are not possible")

NO_FEEDBACK = "OdysseyAI's chat API takes no rating of an answer"  # nothing in its spec rates an answer

SYSTEM = System(
    name="odyssey",
    label="OdysseyAI",
    dialect=ODYSSEY,
    translator=OdysseyTranslator,
    backend=OdysseyBackend.create,
    capabilities=n.Capabilities(
        feedback_reason=NO_FEEDBACK,
        token_streaming=False, stop="client", branching=False, files=False, resume=False, citations=True,
        suggestions=True, conversations=False, branching_reason=NO_BRANCHING,
        stop_note="you stopped waiting; OdysseyAI may still finish this answer on the server, "
                  "but its API cannot give it to us later"),
    settings=(Setting("workspace_id", required=True,
                      missing="with an OdysseyAI key, give workspace_id=... (or set ODYSSEY_WORKSPACE_ID)"),
              Setting("agent_id")),
    no_usage="OdysseyAI's chat API reports no token usage or cost",
)
