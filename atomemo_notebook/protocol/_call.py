"""One HTTP request of any system, described with no I/O: what to send, and how its answer
is read. A flow is a small script of calls (the 3-step upload); a backend's plans are flows
that may also ask to open a stream (`Open`; `Listen` to hand it back open), to wait (`Pause`),
or to run a flow under one deadline (`Together`). Drivers (the clients' `_drive`) do the asking."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Call", "Custom", "Flow", "Listen", "Open", "Pause", "Plan", "Together", "just", "no_body", "require"]

T = TypeVar("T")


def no_body(_: Any) -> None:
    return None


def require(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and the function that turns its JSON answer into a T."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    needs_key: bool = True
    absolute: bool = False  # `path` is a full URL on another host (e.g. uploadHost)
    stream: bool = False
    json_answer: bool = True  # False: the answer's body is not read (e.g. the storage PUT)
    timeout: float | None = None  # this call's deadline in seconds; None: the client's
    files: Any = None  # multipart file fields, as httpx takes them
    data: dict[str, str] | None = None  # multipart form fields beside `files`
    retry_statuses: frozenset[int] | None = None  # answers worth another try; None: the client's default

    @property
    def idempotent(self) -> bool:
        """Safe to send again after a failure that may have reached the server."""
        return self.method in ("GET", "HEAD", "OPTIONS")


# A flow is a small script of calls: it yields a Call, receives its result, returns a value.
Flow = Generator[Call[Any], Any, T]




@dataclasses.dataclass(frozen=True)
class Open:
    """A stream to open, with no I/O: the call that starts it and what the system's client
    needs to read what follows. A send plan returns one; inside a flow, the driver reads it
    to its end and answers None (a failure is thrown into the flow)."""

    call: Call[Any]
    user: str | None = None  # Dify: whose stream it is (its recovery reads their messages)
    conversation_id: str | None = None  # Dify: the conversation asked in (None: a new one)
    topic: str | None = None  # Pipelit: the workflow whose socket channel is subscribed before the call
    text: str | None = None  # Pipelit: the text asked
    opened: Callable[[str], None] | None = None  # told the stream's message id once it is open


@dataclasses.dataclass(frozen=True)
class Listen:
    """A stream to open and hand back unread: the driver answers with the open stream, whose
    reader is the plan's caller (a plan that tries one route, then another on a 404). A
    failure to open is thrown into the plan. A send's `opened` is not told: this is no send."""

    spec: Open


@dataclasses.dataclass(frozen=True)
class Pause:
    """Wait this many seconds, then go on (answered None): a poll's interval."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class Together(Generic[T]):
    """A flow whose calls share one deadline (`timeout`, or the client's), answered with its
    value: the 3-step upload is one operation to its caller."""

    flow: Plan[T]
    timeout: float | None = None


class Custom:
    """A system's own kind of step (Pipelit's watch of a stopped execution): its client answers it."""


# A backend's plan: a flow whose steps may also open (to read, or to hand back), wait, group
# calls, or be the system's own.
Plan = Generator["Call[Any] | Open | Listen | Pause | Together[Any] | Custom", Any, T]


def just(value: T) -> Plan[T]:
    """A flow that needs nothing from the server: its value at once."""
    yield from ()
    return value
