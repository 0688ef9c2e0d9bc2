"""What Client and AsyncClient share: configuration, request building, the key's
boundaries, the retry policy and the reading of answers. No waiting happens here."""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

import httpx

from ._calls import Call
from ._errors import (
    PERMANENT_CODES,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    MissingAPIKeyError,
    excerpt,
    make_api_error,
)
from ._resume import backoff_delay

T = TypeVar("T")

DEFAULT_BASE_URL = "https://server.atomemo.ai/api"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_STREAM_IDLE_TIMEOUT = 60.0  # > twice any heartbeat interval seen; heartbeats reset it
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RESUMES = 5
RETRY_STATUSES = frozenset({408, 409, 429})
KEY_HEADER = "X-Api-Key"



def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[redacted]") if secret and secret in text else text


class BaseClient:
    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT,
        max_resumes: int = DEFAULT_MAX_RESUMES,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ATOMEMO_API_KEY")
        self._api_key = key or None
        url = base_url or os.environ.get("ATOMEMO_BASE_URL") or DEFAULT_BASE_URL
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {url!r}")
        self.base_url = url.rstrip("/")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else (
            DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout, connect=5.0)
        )
        if max_retries < 0 or max_resumes < 0:
            raise ValueError("max_retries and max_resumes must be >= 0")
        self.max_retries = max_retries
        self.max_resumes = max_resumes
        self.stream_idle_timeout = stream_idle_timeout
        # A stream may be silent between heartbeats: its read timeout is the idle timeout.
        self._stream_timeout = httpx.Timeout(
            connect=self.timeout.connect, read=stream_idle_timeout,
            write=self.timeout.write, pool=self.timeout.pool,
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    # -- building ---------------------------------------------------------------------
    def _url(self, call: Call[Any]) -> str:
        return call.path if call.absolute else self.base_url + call.path

    def _headers(self, call: Call[Any], url: str) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if call.stream else "application/json"}
        if call.stream:
            headers["Cache-Control"] = "no-store"
        if call.headers:
            headers.update(call.headers)
        if call.needs_key:
            if self._api_key is None:
                raise MissingAPIKeyError()
            # The key goes to the API's own host only, never to a storage or download host.
            if url == self.base_url or url.startswith(self.base_url + "/"):
                headers[KEY_HEADER] = self._api_key
        return headers

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        url = self._url(call)
        return http.build_request(
            call.method,
            url,
            params=call.params,
            json=call.json,
            content=call.content,
            headers=self._headers(call, url),
            timeout=self._stream_timeout if call.stream else self.timeout,
        )

    # -- retrying ---------------------------------------------------------------------
    def _retry_after_status(self, attempt: int, response: httpx.Response, body: str) -> float | None:
        """Seconds to wait before another try of a failed answer, or None to give up."""
        status = response.status_code
        if attempt > self.max_retries or not (status in RETRY_STATUSES or status >= 500):
            return None
        try:
            code = json.loads(body).get("code") if body else None
        except (ValueError, AttributeError):
            code = None
        if code in PERMANENT_CODES:
            return None
        return backoff_delay(attempt, response.headers.get("Retry-After"))

    def _retry_after_exception(self, attempt: int, exc: httpx.TransportError) -> float | None:
        # Only failures that prove the request never reached the server are safe to repeat.
        if attempt > self.max_retries or not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return None
        return backoff_delay(attempt)

    def _transport_error(self, exc: httpx.TransportError) -> APIConnectionError:
        text = redact(f"{type(exc).__name__}: {exc}", self._api_key)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request timed out ({text})")
        return APIConnectionError(f"connection error ({text})")

    # -- reading ----------------------------------------------------------------------
    def _error(self, response: httpx.Response, body: str) -> APIError:
        return make_api_error(
            response.status_code,
            redact(body, self._api_key),
            request_id=response.headers.get("x-request-id"),
            reason=response.reason_phrase,
        )

    def _parse(self, call: Call[T], response: httpx.Response) -> T:
        text = response.text
        if not call.json_answer or not text.strip():
            return call.parse(None)
        try:
            body = response.json()
        except ValueError:
            raise APIResponseValidationError(
                f"{response.status_code} answer is not JSON: {excerpt(redact(text, self._api_key))}",
                status_code=response.status_code,
                body=text,
            ) from None
        return call.parse(body)

    @staticmethod
    def _usable(call: Call[Any], response: httpx.Response) -> bool:
        """A 2xx answer, and for a streaming call an actual event stream."""
        if not response.is_success:
            return False
        return not call.stream or "text/event-stream" in response.headers.get("content-type", "").lower()

    def _failure(self, response: httpx.Response, body: str) -> APIError | APIResponseValidationError:
        """The error for an answer that is not usable: an HTTP error, or a 2xx of the wrong kind."""
        if not response.is_success:
            return self._error(response, body)
        content_type = response.headers.get("content-type", "")
        return APIResponseValidationError(
            f"expected an event stream (text/event-stream), got {response.status_code} "
            f"{content_type or 'without Content-Type'}: {excerpt(redact(body, self._api_key))}",
            status_code=response.status_code,
            body=body,
        )
