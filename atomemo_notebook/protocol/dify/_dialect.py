"""Dify's service API, as the shared client machinery needs to know it."""

from __future__ import annotations

from .._dialect import Dialect
from ._calls import CODES
from .events import parse_frame

DIFY = Dialect(
    system="dify",
    key_env="DIFY_API_KEY",
    base_url_env="DIFY_BASE_URL",
    default_base_url="https://api.dify.ai/v1",
    key_header="Authorization",
    key_prefix="Bearer ",
    codes=CODES,
    parse_frame=parse_frame,
    api_path="/v1",
    url_forms="a Dify server (https://api.dify.ai) or its service API (https://api.dify.ai/v1)",
)
