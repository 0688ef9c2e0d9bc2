"""Pipelit's REST API, as the shared client machinery needs to know it (FastAPI: errors are
`{"detail": ...}`, with no codes of their own)."""

from __future__ import annotations

from .._dialect import Dialect
from .._errors import APIError
from .events import parse_message


def route_missing(error: APIError) -> bool:
    """FastAPI answers a path with no route `{"detail": "Not Found"}`; Pipelit's own 404s name
    what is missing ("Workflow not found.", "Execution not found.")."""
    body = error.body
    return not isinstance(body, dict) or body.get("detail") in (None, "Not Found")


PIPELIT = Dialect(
    system="pipelit",
    key_env="PIPELIT_API_KEY",
    base_url_env="PIPELIT_BASE_URL",
    default_base_url="http://localhost:8000/api/v1",
    key_header="Authorization",
    key_prefix="Bearer ",
    codes={},
    parse_frame=parse_message,
    api_path="/api/v1",
    url_forms="the server's root (http://localhost:8000, as Pipelit's docs write it) or its API "
              "(http://localhost:8000/api/v1)",
    route_missing=route_missing,
)
