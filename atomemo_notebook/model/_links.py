"""The one decision on which URLs from a conversation may be shown as links (the views'
sources and answer files, `source_records()`): http(s) only, of a sane length. Anything else
(`javascript:`, `data:`, `vbscript:`, relative paths) is dropped, never rewritten."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_URL", "web_url"]

MAX_URL = 2000  # characters: longer is no link a person clicks, and may be a payload


def web_url(value: Any) -> str | None:
    """`value` if it is an http(s) URL a page may link to, else None."""
    if not isinstance(value, str) or len(value) > MAX_URL:
        return None
    return value if value[:8].lower().startswith(("http://", "https://")) else None
