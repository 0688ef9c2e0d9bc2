"""Atomemo's Chat API, as the shared client machinery needs to know it."""

from __future__ import annotations

from ..dialect import Dialect
from ..errors import CODE_ERRORS
from .events import parse_frame

ATOMEMO = Dialect(
    system="atomemo",
    key_env="ATOMEMO_API_KEY",
    base_url_env="ATOMEMO_BASE_URL",
    default_base_url="https://server.atomemo.ai/api",
    key_header="X-Api-Key",
    key_prefix="",
    codes=CODE_ERRORS,
    parse_frame=parse_frame,
    api_path="/api",
    url_forms="https://server.atomemo.ai or https://server.atomemo.ai/api",
)
