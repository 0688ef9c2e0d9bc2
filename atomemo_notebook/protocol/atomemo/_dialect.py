"""Atomemo's Chat API, as the shared client machinery needs to know it."""

from __future__ import annotations

from .._dialect import Dialect
from .._errors import APIError
from ._calls import CODES
from .events import parse_frame


def route_missing(error: APIError) -> bool:
    """A 404 without one of Atomemo's codes (a proxy's, a framework's), or the embedded server's
    ROUTE_NOT_FOUND: no such route. APP_OR_TRIGGER_NOT_FOUND and the like name what is missing."""
    return error.code is None or error.code == "ROUTE_NOT_FOUND"


ATOMEMO = Dialect(
    system="atomemo",
    key_env="ATOMEMO_API_KEY",
    base_url_env="ATOMEMO_BASE_URL",
    default_base_url="https://server.atomemo.ai/api",
    key_header="X-Api-Key",
    key_prefix="",
    codes=CODES,
    parse_frame=parse_frame,
    api_path="/api",
    url_forms="https://server.atomemo.ai or https://server.atomemo.ai/api",
    route_missing=route_missing,
)
