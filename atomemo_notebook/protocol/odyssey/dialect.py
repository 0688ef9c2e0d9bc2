"""OdysseyAI's HTTP API, as the shared client machinery needs to know it: the key in
`x-api-key`, errors as `{"error": "..."}`, `{"error": {"message"}}` or `{"message"}`."""

from __future__ import annotations

from ..dialect import Dialect
from .events import parse_document

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
)
