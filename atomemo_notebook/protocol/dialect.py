"""What makes one system's HTTP API its own, for the shared client machinery: where it lives,
how a key is sent, its error codes, and how a stream's data frame reads. One instance per
system, in protocol/<system>/."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from .atomemo.events import Event
from .errors import APIError

__all__ = ["Dialect"]


@dataclasses.dataclass(frozen=True)
class Dialect:
    system: str
    key_env: str  # the environment variable a key is read from
    base_url_env: str
    default_base_url: str
    key_header: str  # "X-Api-Key", "Authorization"
    key_prefix: str  # "" or "Bearer "
    codes: Mapping[str, type[APIError]]  # documented error codes -> exceptions
    parse_frame: Callable[[str], Event]  # one SSE data payload -> an event (never raises)

    def auth(self, key: str) -> dict[str, str]:
        return {self.key_header: self.key_prefix + key}

    @property
    def permanent_codes(self) -> frozenset[str]:
        """Codes that say the request itself is wrong: retrying cannot help."""
        return frozenset(self.codes)
