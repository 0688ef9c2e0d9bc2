"""Pipelit's chat workflows, as one unit."""

from __future__ import annotations

from .. import _neutral as n
from .._system import Setting, System
from ._adapter import PipelitTranslator
from ._backend import PipelitBackend
from ._dialect import PIPELIT

NO_BRANCHING = ("Pipelit keeps one conversation per user and workflow, and its chat API takes no parent "
                "message: a question always continues it, so regenerate and edit are not possible")

NO_FEEDBACK = "Pipelit's chat API takes no rating of an answer"  # nothing in its spec rates an answer

SYSTEM = System(
    name="pipelit",
    label="Pipelit",
    dialect=PIPELIT,
    translator=PipelitTranslator,
    backend=PipelitBackend.create,
    capabilities=n.Capabilities(
        feedback_reason=NO_FEEDBACK,
        token_streaming=False, stop="client", branching=False, files=False, resume=False, conversations=False,
        new_conversation="clear", branching_reason=NO_BRANCHING, cancel=True,
        stop_note="you stopped; Pipelit was asked to cancel the execution, but it finishes a node "
                  "already running and may still complete the run: this turn says so if it does"),
    settings=(Setting("workflow", required=True,
                      missing="with a Pipelit key, give workflow=<the workflow's slug> (or set PIPELIT_WORKFLOW)"),),
    no_usage="Pipelit's chat answer reports no token usage or cost",
)
