"""OdysseyAI's HTTP API, as the shared client machinery needs to know it: the key in
`x-api-key`, errors as `{"error": "..."}`, `{"error": {"message"}}` or `{"message"}`."""

from __future__ import annotations

from .._dialect import Dialect
from .._errors import APIError
from .events import parse_document


def route_missing(error: APIError) -> bool:
    """OdysseyAI's own 404 ("Conversation or workspace not found") is `{"error": {"message"}}`."""
    body = error.body
    return not (isinstance(body, dict) and ("error" in body or "message" in body))


ODYSSEY = Dialect(
    system="odyssey",
    key_env="ODYSSEY_API_KEY",
    base_url_env="ODYSSEY_BASE_URL",
    # No public default host is documented: a key is sent only where the user says.
    default_base_url="",
    key_header="x-api-key",
    key_prefix="",
    codes={},
    parse_frame=parse_document,
    api_path="/api",
    url_forms="the server's root (https://<host>) or its API (https://<host>/api)",
    route_missing=route_missing,
)
