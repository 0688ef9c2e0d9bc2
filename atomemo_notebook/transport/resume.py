"""Decisions of a message stream that must lose nothing, with no I/O: which event to
pass on, when to resume, when to give up, and how to finish from stored history.

`StreamPolicy` is what the stream loops (streams.py) ask; `StreamState` is Atomemo's answer
(resume, then recover from history). Another system brings its own policy. `after_break` is
what both loops do when a connection breaks, as a plan their client's `_drive` runs."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..protocol.atomemo import calls
from ..protocol.atomemo.events import ChatMessage, Event, MessageCreated, Name, StreamRecovered
from ..protocol.atomemo.models import Message
from ..protocol.call import Call, Custom, Pause, Plan
from ..protocol.errors import APIConnectionError, MessageNotFoundError, UnresumableStreamError
from ..protocol.log import get_logger
from .retry import backoff_delay

if TYPE_CHECKING:
    import httpx

__all__ = ["Reopen", "StreamPolicy", "StreamState", "after_break"]

log = get_logger("atomemo_notebook.stream")

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


class StreamState:
    """Folds what the consumer has already seen, so a resumed stream repeats nothing."""

    def __init__(self, max_resumes: int) -> None:
        self.max_resumes = max_resumes
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.finished = False  # execution_finished seen: the stream may end now
        self.resumes = 0
        self.recovered = False
        self._delivered = 0  # non-heartbeat events passed on, the unit a replay is counted in
        self._text: list[str] = []
        self._check_replay = False
        self._skip = 0

    @property
    def text(self) -> str:
        return "".join(self._text)

    def accept(self, event: Event) -> bool:
        """True when the consumer should see this event."""
        name = event.event
        if name == Name.CHAT_MESSAGE and not self._skip and not self._check_replay:
            self._text.append(event.text)  # type: ignore[attr-defined]  # the hot path
            self._delivered += 1
            return True
        if name == Name.HEARTBEAT:
            return True
        if self._skip:
            self._skip -= 1
            return False
        if self._check_replay:
            self._check_replay = False
            if isinstance(event, MessageCreated) and event.message_id == self.message_id:
                # The server replays from the first event: drop what was already passed on.
                self._skip = self._delivered - 1
                return False
        if name == Name.CHAT_MESSAGE:
            self._text.append(event.text)  # type: ignore[attr-defined]
        elif name == Name.MESSAGE_CREATED and self.message_id is None:
            self.message_id = event.message_id  # type: ignore[attr-defined]
            self.conversation_id = event.conversation_id  # type: ignore[attr-defined]
        elif name == Name.EXECUTION_FINISHED:
            self.finished = True
        self._delivered += 1
        return True

    def on_break(self, cause: BaseException | None) -> Step:
        """The connection ended before the execution did: allow a resume, or raise."""
        if self.message_id is None:
            what = "the stream ended" if cause is None else f"the connection failed ({cause!r})"
            raise APIConnectionError(
                f"{what} before the server confirmed the message; it was not resent, "
                "since that could create it twice"
            )
        if self.resumes >= self.max_resumes:
            raise APIConnectionError(
                f"gave up resuming message {self.message_id} after {self.resumes} tries"
            )
        self.resumes += 1
        self._check_replay = True
        self._skip = 0
        return "resume"

    def resume_call(self) -> Call[None]:
        return calls.resume_stream(str(self.message_id))

    def recovery_call(self) -> Call[list[Message]]:
        if not self.conversation_id:
            raise APIConnectionError("stream unresumable and its conversation is unknown")
        return calls.get_messages(self.conversation_id, end_message_id=self.message_id, include_end=True)

    def resume_delay(self) -> float:
        # The first resume is immediate: a dropped connection is usually not a busy server.
        return 0.0 if self.resumes <= 1 else backoff_delay(self.resumes - 1)

    def recover(self, answer: Any) -> list[Event]:
        """Finish from the stored message: the missing tail of the text, then a marker."""
        message = next((m for m in answer if isinstance(m, Message) and m.id == self.message_id), None)
        if message is None:
            raise MessageNotFoundError(
                f"message {self.message_id} is neither resumable nor in its conversation's history",
                status_code=404, code="NOT_FOUND")
        self.recovered = True
        self.finished = True
        events: list[Event] = []
        seen = self.text
        answer = message.answer or ""
        if len(answer) > len(seen) and answer.startswith(seen):
            events.append(ChatMessage(Name.CHAT_MESSAGE, {"text": answer[len(seen):]}))
        events.append(StreamRecovered(StreamRecovered.NAME, {"message": message.to_wire()}))
        return events


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
        recovered = state.recover((yield state.recovery_call()))
        if recovered is not None:  # else not there yet: ask again after the next delay
            return recovered
