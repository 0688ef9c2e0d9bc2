"""The wire types every system shares: the event a system's stream yields (its name and its
JSON payload, before any adapter reads it), the frame that was not JSON, and the stored things
the model and the views read whatever the system (a message, a conversation, a file
reference). A system's own events and objects subclass these in protocol/<system>/; the
neutral meaning of an event is protocol/_neutral.py's."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

__all__ = [
    "MALFORMED",
    "Conversation",
    "Event",
    "FileRef",
    "MalformedFrame",
    "Message",
    "WireModel",
    "format_datetime",
    "parse_datetime",
]

MALFORMED = "_malformed_frame"  # the name of a data payload that was not a JSON event

M = TypeVar("M", bound="WireModel")


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 (with a trailing Z too) to an aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclasses.dataclass
class WireModel:
    """Base: fields map to camelCase wire keys; `extra` keeps keys we do not know."""

    WIRE_NAMES: ClassVar[dict[str, str]] = {}
    extra: dict[str, Any]
    DATETIMES: ClassVar[frozenset[str]] = frozenset()
    NESTED: ClassVar[dict[str, type[WireModel]]] = {}

    @classmethod
    def _wire_name(cls, field: str) -> str:
        return cls.WIRE_NAMES.get(field, _camel(field))

    @classmethod
    def from_wire(cls: type[M], payload: dict[str, Any]) -> M:
        if not isinstance(payload, dict):
            raise TypeError(f"{cls.__name__} expects a JSON object, got {type(payload).__name__}")
        kwargs: dict[str, Any] = {}
        known: set[str] = set()
        for field in dataclasses.fields(cls):
            if field.name == "extra":
                continue
            key = cls._wire_name(field.name)
            known.add(key)
            if key not in payload:
                continue
            value = payload[key]
            if field.name in cls.DATETIMES:
                value = parse_datetime(value)
            elif field.name in cls.NESTED and isinstance(value, dict):
                value = cls.NESTED[field.name].from_wire(value)
            kwargs[field.name] = value
        kwargs["extra"] = {k: v for k, v in payload.items() if k not in known}
        return cls(**kwargs)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            if field.name == "extra":
                continue
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = format_datetime(value)
            elif isinstance(value, WireModel):
                value = value.to_wire()
            out[self._wire_name(field.name)] = value
        out.update(self.extra)
        return out


@dataclasses.dataclass
class FileRef(WireModel):
    """A file in a system's storage (the `file_ref` object of Atomemo's API); usable as the `query`
    of a message."""

    WIRE_NAMES: ClassVar[dict[str, str]] = {"type": "__type__"}

    filename: str = ""
    extension: str = ""
    mime_type: str = "application/octet-stream"
    size: int = 0
    res_key: str = ""
    remote_url: str | None = None
    source: str = "oss"
    type: str = "file_ref"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def to_wire(self) -> dict[str, Any]:
        # The documented key order, so a printed FileRef reads like the spec's.
        wire = super().to_wire()
        order = ["__type__", "source", "filename", "extension", "mimeType", "size", "resKey",
                 "remoteUrl"]
        return {k: wire[k] for k in order} | {k: v for k, v in wire.items() if k not in order}

    @staticmethod
    def is_file_ref(value: Any) -> bool:
        return isinstance(value, dict) and value.get("__type__") == "file_ref"


@dataclasses.dataclass
class Conversation(WireModel):
    """One conversation of a user with an app, as a system lists it (Atomemo's shape, which the
    other systems' answers are read into: they leave `trigger_id` empty)."""

    DATETIMES: ClassVar[frozenset[str]] = frozenset({"started_at", "created_at", "updated_at"})

    id: str = ""
    name: str = ""
    app_id: str = ""
    trigger_id: str = ""
    user_id: str = ""
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    started_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class Message(WireModel):
    """One stored message: the query, the answer, its status and its place in the tree (`parent_id`)."""

    DATETIMES: ClassVar[frozenset[str]] = frozenset({"created_at", "updated_at"})

    id: str = ""
    status: str = ""
    query: str | FileRef = ""
    answer: str | None = None
    execution_id: str | None = None
    dialogue_count: int = 0
    user_id: str = ""
    source: str | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    parent_id: str | None = None
    conversation_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    feedback: str | None = None  # like | dislike: how the answer was rated, where the system keeps it

    @classmethod
    def from_wire(cls, payload: dict[str, Any]) -> Message:
        message = super().from_wire(payload)
        if FileRef.is_file_ref(message.query):
            message.query = FileRef.from_wire(message.query)  # type: ignore[arg-type]
        return message


class Event:
    """One event of a message stream."""

    __slots__ = ("data", "event")

    def __init__(self, event: str, data: dict[str, Any] | None = None) -> None:
        self.event = event
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(event={self.event!r}, data={self.data!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and (self.event, self.data) == (other.event, other.data)

    __hash__ = None  # type: ignore[assignment]

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as it travels in a `data:` line."""
        return {"event": self.event} if self.data is None else {"event": self.event, "data": self.data}

    def _get(self, key: str, default: Any = None) -> Any:
        return default if self.data is None else self.data.get(key, default)


class MalformedFrame(Event):
    """A `data:` payload that is not a JSON event object. Kept, so nothing is lost silently."""

    __slots__ = ()
    NAME = MALFORMED

    @property
    def raw(self) -> str:
        return str(self._get("raw", ""))

    @property
    def error(self) -> str:
        return str(self._get("error", ""))
