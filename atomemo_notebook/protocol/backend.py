"""A system's backend, written once and with no I/O: each method returns a plan (a flow of
calls that receives each answer and returns the result) or, to send, the stream to open.
The model's drivers run the plans over a sync or an async client (model/_backend.py); unit
tests feed them canned answers (tests/test_backends.py)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ._call import Open, Plan, just
from ._system import Translate
from ._wire import Conversation, FileRef, Message

__all__ = ["AppInfo", "Backend", "BackendBase", "Upload", "inputs_message"]

Upload = str | os.PathLike[str] | bytes


@dataclasses.dataclass
class AppInfo:
    """What the views show about the app, whatever the system."""

    name: str
    version: str = ""
    description: str | None = None
    emoji: str = ""
    color: str | None = None
    variables: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    examples: list[str] = dataclasses.field(default_factory=list)
    opening: str | None = None
    node_names: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    graph: dict[str, Any] | None = None  # nodes and edges, where the system publishes them
    # Named by its id, for want of a description (OdysseyAI): the name an answer gives replaces it.
    provisional: bool = False


MAX_INPUT_CHARS = 200  # of one input's value in the message a run is shown as


def inputs_message(inputs: Mapping[str, Any]) -> str:
    """A run's inputs as the message it is shown and recorded as (a Dify workflow app takes
    inputs, not a question): one `name: value` line each."""
    lines = []
    for name, value in inputs.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        lines.append(f"{name}: {text[:MAX_INPUT_CHARS]}{'…' if len(text) > MAX_INPUT_CHARS else ''}")
    return "\n".join(lines) or "(no inputs)"


class Backend(Protocol):
    """What a chat asks of a system, as plans. `user` is the asking user's id."""

    system: str
    takes_inputs: bool

    def translator(self) -> Translate: ...
    def coordinates(self) -> dict[str, Any]: ...
    def app(self) -> Plan[AppInfo | None]: ...
    def send(self, *, query: str | FileRef, user: str, conversation_id: str | None, parent_id: str | None,
             inputs: dict[str, Any], source: str | None) -> Open: ...
    def stop(self, task_id: str | None, user: str) -> Plan[None]: ...
    def cancel(self, execution_id: str, note: Callable[[str], None]) -> Plan[None]: ...
    def history(self, conversation_id: str, user: str) -> Plan[list[Message]]: ...
    def conversations(self, user: str) -> Plan[list[Conversation]]: ...
    def follow(self, message_id: str, conversation_id: str, user: str) -> Plan[list[Message]]: ...
    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
               user: str) -> Plan[FileRef]: ...
    def suggestions(self, message_id: str, user: str) -> Plan[list[str]]: ...
    def clear(self, user: str) -> Plan[None]: ...
    def answer_form(self, form_id: str, action: str, inputs: dict[str, str], user: str) -> Plan[None]: ...
    def feedback(self, message_id: str, user: str, rating: str | None, comment: str | None) -> Plan[None]: ...
    def run_events(self, run_id: str, user: str) -> Plan[Any]: ...
    def run_state(self, run_id: str, user: str) -> Open | None: ...


# A system's backend for one chat: made from the client's base URL and connect()'s settings.
MakeBackend = Callable[[str, Mapping[str, Any]], Backend]


class BackendBase:
    """What most systems answer: no stop, no cancel, no suggestions, nothing stored. Each
    system's backend says what it does differently."""

    system = ""
    # A run takes inputs, not a question (a Dify workflow app): an evaluation's columns are its inputs.
    takes_inputs = False
    no_files = "takes no files"
    no_clear = "keeps every conversation: start a new one instead of clearing"

    def stop(self, task_id: str | None, user: str) -> Plan[None]:
        return just(None)  # Stop only stops listening

    def cancel(self, execution_id: str, note: Callable[[str], None]) -> Plan[None]:
        return just(None)

    def history(self, conversation_id: str, user: str) -> Plan[list[Message]]:
        return just([])

    def conversations(self, user: str) -> Plan[list[Conversation]]:
        return just([])

    def follow(self, message_id: str, conversation_id: str, user: str) -> Plan[list[Message]]:
        return just([])

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
               user: str) -> Plan[FileRef]:
        raise ValueError(self.no_files)

    def suggestions(self, message_id: str, user: str) -> Plan[list[str]]:
        return just([])

    def clear(self, user: str) -> Plan[None]:
        raise ValueError(self.no_clear)

    def answer_form(self, form_id: str, action: str, inputs: dict[str, str], user: str) -> Plan[None]:
        raise ValueError(f"{self.system or 'this system'} asks no person for input: there is no form to answer")

    def feedback(self, message_id: str, user: str, rating: str | None, comment: str | None) -> Plan[None]:
        raise ValueError(f"{self.system or 'this system'} takes no rating of an answer")

    def run_events(self, run_id: str, user: str) -> Plan[Any]:
        """The stream of a run's further events (after its form is answered), open (a `Listen`
        step's answer) where the system has one; else None."""
        return just(None)

    def run_state(self, run_id: str, user: str) -> Open | None:
        """The stream of a run's state so far, ending where it pauses (a paused run reopened)."""
        return None
