"""Typed views of the Chat API's JSON objects: snake_case attributes, datetimes parsed,
unknown fields kept in `extra`, and `to_wire()` giving back the camelCase shape."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

__all__ = ["App", "AppVersion", "Conversation", "FileRef", "Message", "UploadToken", "parse_datetime"]

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
    """A file in Atomemo's storage; usable as the `query` of a message."""

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
class AppVersion(WireModel):
    """One published version of an app; `snapshot` holds its workflow (nodes and edges)."""

    DATETIMES: ClassVar[frozenset[str]] = frozenset({"created_at", "updated_at"})

    id: str = ""
    app_id: str = ""
    name: str = ""
    description: str | None = None
    snapshot: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    screenshot: str | None = None
    system: bool = False
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def node_names(self) -> dict[str, tuple[str, str]]:
        """node id -> (name, type) read defensively from the snapshot (its shape is not public)."""
        nodes: Any = self.snapshot.get("nodes") if isinstance(self.snapshot, dict) else None
        items: list[tuple[str, Any]] = []
        if isinstance(nodes, dict):
            items = [(str(k), v) for k, v in nodes.items()]
        elif isinstance(nodes, list):
            items = [(str(n.get("id", "")), n) for n in nodes if isinstance(n, dict)]
        out: dict[str, tuple[str, str]] = {}
        for node_id, node in items:
            if not isinstance(node, dict):
                continue
            data: dict[str, Any] = node["data"] if isinstance(node.get("data"), dict) else {}
            name = node.get("name") or node.get("label") or data.get("name") or data.get("label")
            kind = node.get("type") or data.get("type") or ""
            out[str(node.get("id") or node_id)] = (str(name or node_id), str(kind))
        return out


@dataclasses.dataclass
class App(WireModel):
    """An Atomemo app, as `Client.get_app` returns it, with its active version."""

    DATETIMES: ClassVar[frozenset[str]] = frozenset({"created_at", "updated_at"})
    NESTED: ClassVar[dict[str, type[WireModel]]] = {"active_version": AppVersion}

    id: str = ""
    name: str = ""
    description: str | None = None
    status: str = "active"
    active_version_id: str | None = None
    active_version: AppVersion | None = None
    icon: dict[str, Any] = dataclasses.field(default_factory=dict)
    color: str | None = None
    organization_id: str | None = None
    team_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class Conversation(WireModel):
    """One conversation of a user with an app's trigger, as the API lists it."""

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

    @classmethod
    def from_wire(cls, payload: dict[str, Any]) -> Message:
        message = super().from_wire(payload)
        if FileRef.is_file_ref(message.query):
            message.query = FileRef.from_wire(message.query)  # type: ignore[arg-type]
        return message


@dataclasses.dataclass
class UploadToken(WireModel):
    """The first step of an upload: where to PUT the file, and its storage key (never in a repr)."""

    uptoken: str = ""
    res_key: str = ""
    upload_host: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        # The token is a short-lived credential: keep it out of reprs.
        return f"UploadToken(res_key={self.res_key!r}, upload_host={self.upload_host!r})"

    @property
    def put_url(self) -> str:
        return f"{self.upload_host.rstrip('/')}/{self.res_key}?{self.uptoken}"
