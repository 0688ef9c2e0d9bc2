"""Atomemo, the package's home system, as one unit."""

from __future__ import annotations

from .. import _neutral as n
from .._system import Setting, System
from . import _adapter as adapter
from ._backend import AtomemoBackend
from ._dialect import ATOMEMO
from .events import event_from_wire

IDS_HELP = (
    "with an Atomemo key, give app_id and trigger_id (or set ATOMEMO_APP_ID and ATOMEMO_TRIGGER_ID). "
    "Atomemo has no call that lists apps (it describes an app by its id only): both ids are shown in "
    "Atomemo where the workflow's Chat Trigger is published, beside the chatflow API key (the app "
    "id is also in the app's address in the editor; the trigger id is the Chat Trigger node's id). "
    "ChatWidget(demo='support') or connect(..., offline=True) uses the offline demo instead.")

NO_FEEDBACK = "Atomemo's chat API takes no rating of an answer"  # nothing in its spec rates an answer

SYSTEM = System(
    name="atomemo",
    label="Atomemo",
    dialect=ATOMEMO,
    translator=adapter.translator,
    backend=AtomemoBackend.create,
    capabilities=n.Capabilities(token_streaming=True, stop="client", branching=True, files=True, resume=True,
                                feedback_reason=NO_FEEDBACK),
    settings=(Setting("app_id", required=True, missing=IDS_HELP),
              Setting("trigger_id", required=True, missing=IDS_HELP)),
    event=event_from_wire,
    home=True,
)
