"""Typed views of the Chat API's JSON objects: snake_case attributes, datetimes parsed,
unknown fields kept in `extra`, and `to_wire()` giving back the camelCase shape.

The ones every system shares (Conversation, FileRef, Message and their base) live in
protocol/_wire.py; they are imported here too, for code that still reads them from this module."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, ClassVar

from .._wire import Conversation, FileRef, Message, WireModel, format_datetime, parse_datetime

__all__ = ["App", "AppVersion", "Conversation", "FileRef", "Message", "UploadToken", "WireModel",
           "format_datetime", "parse_datetime"]

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
