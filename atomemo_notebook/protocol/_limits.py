"""Bounds on what a server can make the client hold: generous, configurable, named in
the error when one is hit (`LimitExceededError.limit_name`)."""

from __future__ import annotations

import dataclasses

__all__ = ["Limits"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """`Client(limits=Limits(body=...))`. Sizes count decompressed bytes or decoded characters."""

    line: int = 16 * 1024 * 1024
    """Characters of one SSE line: a stream with no line break fails here."""
    event: int = 32 * 1024 * 1024
    """Characters of one SSE event's data (its data lines together); bytes of one Pipelit
    WebSocket message (refused unread by the protocol)."""
    body: int = 64 * 1024 * 1024
    """Bytes of one JSON answer, after decompression (a gzip bomb stops here)."""
    error_body: int = 64 * 1024
    """Bytes of an error answer kept for the exception; the rest is not read."""
    json_values: int = 2_000_000
    """JSON values (objects, arrays, strings, numbers) one answer or event may make once parsed,
    counted from its text before parsing: `{}` is 2 bytes on the wire and 64 in memory, so this,
    not the byte limits, bounds the memory parsing takes. An answer past it fails; a stream
    event past it is kept as a malformed frame (a preview of its text) and the stream goes on."""
    reply_memory: int = 8 * 1024 * 1024
    """Bytes one reply keeps of what the server sent besides the answer text: raw events, node
    inputs and outputs, tool arguments and results, notes, errors. Past it, values are kept as
    previews marked where they were cut (with how much was left out) and an anomaly says so.
    What a reply holds stays within a small multiple of this, whatever the server sends."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{field.name} must be a positive int, got {value!r}")
