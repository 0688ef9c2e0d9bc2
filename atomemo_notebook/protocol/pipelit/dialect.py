"""Pipelit's REST API, as the shared client machinery needs to know it (FastAPI: errors are
`{"detail": ...}`, with no codes of their own)."""

from __future__ import annotations

from ..dialect import Dialect
from .events import parse_message

PIPELIT = Dialect(
    system="pipelit",
    key_env="PIPELIT_API_KEY",
    base_url_env="PIPELIT_BASE_URL",
    default_base_url="http://localhost:8000/api/v1",
    key_header="Authorization",
    key_prefix="Bearer ",
    codes={},
    parse_frame=parse_message,
)
