"""The neutral events: what every system's stream means, in one vocabulary. Each system's
adapter (protocol/<system>/adapter.py) turns its own wire events into these; the fold (model/reply.py),
the tree, the records and the views read only these, never a system's names.

Small slotted dataclasses: one is made per wire event on the hot path."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = [
    "AgentLogged",
    "Anomaly",
    "AppNamed",
    "Capabilities",
    "Citation",
    "Citations",
    "Failed",
    "Files",
    "InputEnded",
    "InputRequested",
    "IterationNext",
    "MessageEnded",
    "Neutral",
    "NodeFinished",
    "NodeNote",
    "NodeStarted",
    "NodeStatus",
    "Outputs",
    "Reasoning",
    "Recovered",
    "RunFinished",
    "RunPaused",
    "RunResumed",
    "RunStarted",
    "ServerTime",
    "Started",
    "Suggestions",
    "Text",
    "TextReplaced",
    "ToolFinished",
    "ToolStarted",
    "Usage",
]



@dataclasses.dataclass(slots=True, frozen=True)
class Started:
    """The server created the message (and the conversation, if new)."""

    message_id: str
    conversation_id: str | None
    task_id: str | None = None  # what a server-side stop names (Dify)


@dataclasses.dataclass(slots=True, frozen=True)
class Text:
    """More of the answer."""

    text: str


@dataclasses.dataclass(slots=True, frozen=True)
class TextReplaced:
    """The whole answer so far is replaced (a moderation rewrite, a stored answer)."""

    text: str
    reason: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class RunStarted:
    execution_id: str
    status: str = "running"
    trigger_id: str | None = None
    version_id: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class RunFinished:
    execution_id: str
    status: str  # succeeded | failed | stopped
    error: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class RunPaused:
    """The run waits for a person (Dify's Human Input form): the stream ends here, the run
    does not; it goes on on the server once the form is answered."""

    execution_id: str
    node_ids: tuple[str, ...] = ()  # the nodes that wait


@dataclasses.dataclass(slots=True, frozen=True)
class Outputs:
    """What a run gave as its result (a Dify workflow app's End node outputs): the answer's data."""

    value: dict[str, Any]


@dataclasses.dataclass(slots=True, frozen=True)
class InputRequested:
    """A person is asked to answer a form before the run goes on (Dify's Human Input node).
    Never carries what answers it (Dify's form token stays in the kernel)."""

    form_id: str
    node_id: str
    node_title: str
    content: str  # markdown, drawn sanitized like an answer
    fields: tuple[dict[str, Any], ...]  # {name, type, default, options}
    actions: tuple[dict[str, str], ...]  # {id, title, style}
    expires_at: float | None = None  # the server's epoch seconds
    refused: str | None = None  # why it cannot be answered from here (a form too big to read)


@dataclasses.dataclass(slots=True, frozen=True)
class InputEnded:
    """The form of `node_id` is answered (`filled`, perhaps elsewhere) or expired (`timeout`)."""

    node_id: str
    how: str  # filled | timeout
    text: str | None = None  # what was answered, as the server renders it
    action: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class RunResumed:
    """A paused run goes on (its form answered): the reply streams again, in the same turn."""

    execution_id: str


@dataclasses.dataclass(slots=True, frozen=True)
class MessageEnded:
    """The answer is complete; for systems without a run around it, the reply ends here."""


@dataclasses.dataclass(slots=True, frozen=True)
class NodeStarted:
    run_id: str
    node_id: str
    name: str | None = None  # None: the app's graph names it (Atomemo)
    type: str | None = None
    parent_run_id: str | None = None  # the Loop/Iteration run this one is inside
    inputs: Any = None
    predecessor_id: str | None = None
    reported: bool = False  # known only after the fact: no live timing (OdysseyAI)
    status: str = "running"  # or "waiting": queued, not yet running (Pipelit's node_enqueued)


@dataclasses.dataclass(slots=True, frozen=True)
class NodeStatus:
    """A node run's status changed without finishing (waiting -> running)."""

    run_id: str
    status: str
    type: str | None = None  # the node's type, where the queued run did not say it


@dataclasses.dataclass(slots=True, frozen=True)
class NodeNote:
    """Something a node said while it ran (an agent's message, before the final answer)."""

    run_id: str
    text: str


@dataclasses.dataclass(slots=True, frozen=True)
class Reasoning:
    """The model's thinking, streamed: never part of the answer. `node_id`: the node that thinks
    (None: the answer's own `<think>` block); `final`: its thinking is complete."""

    node_id: str | None
    text: str
    final: bool = False


@dataclasses.dataclass(slots=True, frozen=True)
class NodeFinished:
    run_id: str
    node_id: str
    status: str  # succeeded | failed | break | stopped
    output: Any = None
    error: str | None = None
    ports: tuple[int, ...] = ()
    inputs: Any = None
    process_data: Any = None
    tokens: int | None = None
    elapsed: float | None = None  # seconds, as the server measured them
    name: str | None = None
    type: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class IterationNext:
    """A Loop/Iteration run moved to its next round."""

    run_id: str
    index: int


@dataclasses.dataclass(slots=True, frozen=True)
class ToolStarted:
    call_id: str
    tool_name: str
    args: Any = None
    node_id: str | None = None  # the agent node (Atomemo names it)
    parent_run_id: str | None = None  # the agent's run (Dify, Pipelit name it)


@dataclasses.dataclass(slots=True, frozen=True)
class ToolFinished:
    call_id: str
    tool_name: str
    result: Any = None
    error: str | None = None
    node_id: str | None = None
    parent_run_id: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class AgentLogged:
    """One entry of an agent node's log, new or updated (Dify's agent_log): entries nest by
    `parent_id` into a tree under the agent's run."""

    entry_id: str
    label: str
    status: str  # start | success | error
    parent_id: str | None = None
    data: Any = None
    error: str | None = None
    node_id: str | None = None
    parent_run_id: str | None = None  # the agent's run


@dataclasses.dataclass(slots=True, frozen=True)
class Citation:
    title: str
    snippet: str | None = None
    url: str | None = None
    score: float | None = None
    source: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class Citations:
    items: tuple[Citation, ...]


@dataclasses.dataclass(slots=True, frozen=True)
class AppNamed:
    """The answer names the app that gave it (OdysseyAI's root agent): where the system publishes
    no app description, the chat takes this name for the app's."""

    name: str


@dataclasses.dataclass(slots=True, frozen=True)
class Suggestions:
    """Questions the system suggests asking next."""

    questions: tuple[str, ...]


@dataclasses.dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    price: float | None = None
    currency: str | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class Files:
    """Files the answer came with: [{id, type, url, name}]."""

    files: tuple[dict[str, Any], ...]


@dataclasses.dataclass(slots=True, frozen=True)
class Failed:
    """The system said, mid-stream, that the answer failed."""

    code: str
    message: str
    status: int | None = None
    run: bool = False  # the run failed on the server (not an HTTP answer): ExecutionFailedError
    node_id: str | None = None  # the node that failed, where known


@dataclasses.dataclass(slots=True, frozen=True)
class Recovered:
    """The stream could not be resumed: the stored message ends it."""

    status: str
    answer: str | None


@dataclasses.dataclass(slots=True, frozen=True)
class ServerTime:
    """When the server says the events that follow (from the same wire event) happened, in its
    epoch seconds: the timeline places them by it rather than by arrival, which a server that
    paces its frames (Pipelit: >= 50 ms apart) distorts."""

    seconds: float


@dataclasses.dataclass(slots=True, frozen=True)
class Anomaly:
    """Something in the stream that could not be read (a frame that is not JSON...)."""

    text: str


Neutral = (Started | Text | TextReplaced | RunStarted | RunFinished | RunPaused | RunResumed | InputRequested
           | InputEnded | Outputs | MessageEnded | NodeStarted
           | NodeStatus | NodeNote | Reasoning | NodeFinished | IterationNext | ToolStarted | ToolFinished | AgentLogged
           | Citations | Suggestions | Usage | Files | Failed | Recovered | ServerTime | Anomaly | AppNamed)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a system can do; views show only the controls that work, and say why one is missing."""

    token_streaming: bool = True
    stop: str = "client"  # server: Stop cancels the run; client: Stop only stops listening
    branching: bool = True  # regenerate / edit as siblings
    files: bool = True
    resume: bool = False  # a dropped stream always continues where it broke (Dify's: where its server can)
    citations: bool = False
    suggestions: bool = False
    conversations: bool = True  # more than one conversation (a list to reopen)
    branching_reason: str = ""
    new_conversation: str = "new"  # new | clear: a fresh conversation, or clearing the only one
    stop_note: str = ""  # what a stopped turn says, where the system's own words are needed
    # Stop also asks the server to cancel the run, without its word that the run ends
    # (Pipelit): what the run did afterwards is shown on the stopped turn.
    cancel: bool = False
    # A run may pause for a person's answer to a form (Dify's Human Input): reply.respond().
    human_input: bool = False
    # An answer can be rated like/dislike (with a comment): chat.feedback(); else why not.
    feedback: bool = False
    feedback_reason: str = ""
