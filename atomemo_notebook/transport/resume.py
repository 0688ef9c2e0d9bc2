"""Decisions of a message stream that must lose nothing, with no I/O: which event to
pass on, when to resume, when to give up, and how to finish from stored history.

`StreamPolicy` is what the stream loops (streams.py) ask; each system brings its own answer,
beside its client: Atomemo's `StreamState` (resume, then recover from history) in client.py,
Dify's `DifyStreamState` (recover, never resume) in dify.py."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from ..protocol.call import Call
from ..protocol.wire import Event

__all__ = ["Step", "StreamPolicy"]

Step = Literal["resume", "recover"]


class StreamPolicy(Protocol):
    message_id: str | None
    conversation_id: str | None
    finished: bool
    resumes: int
    recovered: bool

    def accept(self, event: Event) -> bool: ...
    def on_break(self, cause: BaseException | None) -> Step: ...
    def resume_delay(self) -> float: ...
    def resume_call(self) -> Call[Any]: ...
    def recovery_call(self) -> Call[Any]: ...
    def recover(self, answer: Any) -> list[Event] | None: ...


def __getattr__(name: str) -> Any:
    # Atomemo's policy lived here: kept importable for code that still reads it from this module.
    if name == "StreamState":
        from .client import StreamState

        return StreamState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
