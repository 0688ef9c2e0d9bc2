"""The package logger: `logging.getLogger("atomemo_notebook")` and its children say at
DEBUG every retry, resume, recovery and fault-injection decision. Every record passes a
filter that replaces any API key this process knows with `[redacted]`, whoever logs it."""

from __future__ import annotations

import logging
import threading

__all__ = ["get_logger", "register_secret", "scrub_secrets"]

_secrets: set[str] = set()
_lock = threading.Lock()


MIN_SECRET = 8  # a shorter "key" (a test's "k") would redact every letter k of every line


def register_secret(secret: str | None) -> None:
    """Remember a key so that no log line of this package can carry it."""
    if secret and len(secret) >= MIN_SECRET:
        with _lock:
            _secrets.add(secret)


def scrub_secrets(text: str) -> str:
    """`text` with every key this process knows replaced by `[redacted]` (what leaves the
    kernel, log lines and exported spans, passes here)."""
    if not _secrets:
        return text
    for secret in list(_secrets):
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        text = record.getMessage()
        redacted = scrub_secrets(text)
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


_FILTER = RedactSecrets()


def get_logger(name: str) -> logging.Logger:
    """A logger under `atomemo_notebook` with the redacting filter attached (a logger's
    filters apply only to its own records, so each one gets it)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
