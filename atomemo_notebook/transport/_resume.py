"""Decisions of a message stream that must lose nothing, with no I/O: which event to
pass on, when to resume, when to give up, and how to finish from stored history.

`StreamPolicy` is what the stream loops (_streams.py) ask; each system brings its own answer,
beside its client: Atomemo's `StreamState` (resume, then recover from history) in _client.py,
Dify's `DifyStreamState` (recover, never resume) in _dify.py. `after_break` is what both loops
do when a connection breaks, as a plan their client's `_drive` runs."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..protocol._call import Call, Custom, Pause, Plan
from ..protocol._errors import APIConnectionError, APIError, UnresumableStreamError
from ..protocol._log import get_logger
from ..protocol._wire import Event

if TYPE_CHECKING:
    import httpx

__all__ = ["Reopen", "Step", "StreamPolicy", "after_break"]

log = get_logger("atomemo_notebook.stream")

Step = Literal["resume", "recover"]


class StreamPolicy(Protocol):
    message_id: str | None
    conversation_id: str | None
    finished: bool
    resumes: int
    recovered: bool
    # Nothing more matters: the stream ends now, not when the server closes (Dify holds ~1 s).
    final: bool

    @property
    def idle_timeout(self) -> float | None:
        """The silence allowed now, when shorter than the client's stream_idle_timeout (None: that one)."""

    def accept(self, event: Event) -> bool: ...
    def on_break(self, cause: BaseException | None) -> Step: ...
    def resume_delay(self) -> float: ...
    def resume_call(self) -> Call[Any]: ...
    def recovery_call(self) -> Call[Any]: ...
    def recover(self, answer: Any) -> list[Event] | None: ...


def __getattr__(name: str) -> Any:
    # Atomemo's policy lived here: kept importable for code that still reads it from this module.
    if name == "StreamState":
        from ._client import StreamState

        return StreamState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclasses.dataclass(frozen=True)
class Reopen(Custom):
    """Open the stream again at `call` (a resume): answered with the new response, headers read."""

    call: Call[Any]


def after_break(state: StreamPolicy, cause: BaseException | None) -> Plan[httpx.Response | list[Event]]:
    """A broken stream's next move: after the policy's delay, the reopened response (a resume),
    or the events that finish it from the stored message (asked again after each delay until
    it is there). Raises what the policy raises when it gives up."""
    while True:
        step = state.on_break(cause)
        delay = state.resume_delay()
        log.debug("stream of %s broke (%r); %s %d in %.2f s", state.message_id, cause, step, state.resumes, delay)
        yield Pause(delay)
        if step == "resume":
            try:
                response: httpx.Response = yield Reopen(state.resume_call())
                return response
            except UnresumableStreamError:
                log.debug("message %s is unresumable: recovering from history", state.message_id)
            except APIConnectionError as exc:
                cause = exc
                continue
            except APIError as exc:
                # A system whose servers may lack the resume route (Dify before 2026): refused
                # once, it is not asked again, and the stored message finishes the stream.
                refused = getattr(state, "resume_refused", None)
                if refused is None:
                    raise
                refused(exc)
                log.debug("message %s: resume refused (%s); recovering from history", state.message_id, exc)
        recovered = state.recover((yield state.recovery_call()))
        if recovered is not None:  # else not there yet: ask again after the next delay
            return recovered
