"""One HTTP request of any system, described with no I/O: what to send, and how its answer
is read. A flow is a small script of calls (the 3-step upload)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Call", "Flow", "no_body", "require"]

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


