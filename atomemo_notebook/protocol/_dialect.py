"""What makes one system's HTTP API its own, for the shared client machinery: where it lives,
how a key is sent, its error codes, and how a stream's data frame reads. One instance per
system, in protocol/<system>/."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from ._errors import APIError
from ._wire import Event

__all__ = ["Dialect", "no_code"]


def no_code(error: APIError) -> bool:
    """A 404 without the system's error code: no such route (a proxy's or framework's 404)."""
    return error.code is None


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
    # The path every route of the API has under the server's root ("/api/v1"): a base URL
    # given as the server's root gets it; one with a path is kept (the API's root, a proxy's).
    api_path: str = ""
    # Both forms of a base URL, as the system's docs write them, for the error that says which
    # form is expected: "https://api.dify.ai or https://api.dify.ai/v1".
    url_forms: str = ""
    # A 404 that says the route does not exist (so the base URL is wrong), not that the thing
    # asked for does not: a 404 with the system's own "not found" body is the latter.
    route_missing: Callable[[APIError], bool] = no_code

    def api_root(self, base_url: str) -> str:
        """The API's root for a base URL in either form: the server's root gets `api_path`."""
        parts = urlsplit(base_url)
        if self.api_path and parts.path in ("", "/") and not parts.query:
            return base_url.rstrip("/") + self.api_path
        return base_url

    def auth(self, key: str) -> dict[str, str]:
        return {self.key_header: self.key_prefix + key}

    @property
    def permanent_codes(self) -> frozenset[str]:
        """Codes that say the request itself is wrong: retrying cannot help."""
        return frozenset(self.codes)
