"""What Client and AsyncClient share: configuration, request building, the key's
boundaries, deadlines, the retry decisions and the reading of answers. No waiting here."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, ClassVar, TypeVar

import httpx

from ..protocol._bounded import check_values
from ..protocol._call import Call
from ..protocol._dialect import Dialect
from ..protocol._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    LimitExceededError,
    MissingAPIKeyError,
    NotFoundError,
    RateLimitError,
    excerpt,
    make_api_error,
)
from ..protocol._limits import Limits
from ..protocol._log import get_logger, register_secret
from ._inflate import ACCEPT_ENCODING
from ._retry import MAX_RETRY_AFTER, backoff_delay, retry_after

T = TypeVar("T")
log = get_logger("atomemo_notebook.client")

DEFAULT_TIMEOUT = 30.0  # seconds: the deadline of one call, retries included
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_STREAM_IDLE_TIMEOUT = 60.0  # > twice any heartbeat interval seen; any event resets it
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RESUMES = 5
MAX_PARSED_URLS = 256  # addresses a client keeps parsed (see BaseClient._build)
RETRY_STATUSES = frozenset({408, 409, 429})
# Failures that show the request was not answered: retried for idempotent calls only, since a
# POST may have been received before the connection broke.
RETRYABLE_ON_IDEMPOTENT = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[redacted]") if secret and secret in text else text


# Each system's public client classes by (system, asynchronous), filled as they are defined
# (`class DifyClient(..., speaks=True)`): a new system's clients register themselves.
CLIENTS: dict[tuple[str, bool], type[BaseClient]] = {}


def client_class(system: str, asynchronous: bool = False) -> type[BaseClient]:
    """The client class that speaks `system`, sync or async."""
    try:
        return CLIENTS[system, asynchronous]
    except KeyError:
        raise ValueError(f"no {'async ' if asynchronous else ''}client speaks {system!r}") from None


class BaseClient:
    """The machinery every system's client shares; `DIALECT` says which system it speaks (each
    system's client class sets it)."""

    DIALECT: ClassVar[Dialect]
    ASYNCHRONOUS = False

    def __init_subclass__(cls, *, speaks: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if speaks:
            CLIENTS[cls.DIALECT.system, cls.ASYNCHRONOUS] = cls

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT,
        max_resumes: int = DEFAULT_MAX_RESUMES,
        limits: Limits | None = None,
    ) -> None:
        dialect = self.DIALECT
        key = api_key if api_key is not None else os.environ.get(dialect.key_env)
        self._api_key = key or None
        register_secret(self._api_key)
        url = base_url or os.environ.get(dialect.base_url_env) or dialect.default_base_url
        if not url:
            raise ValueError(f"{dialect.system} has no default address: give base_url or set {dialect.base_url_env}")
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {url!r}")
        # Either form of the address (the server's root, or its API's root): one decision, the dialect's.
        self.base_url = dialect.api_root(url.rstrip("/")).rstrip("/")
        # `timeout`: seconds as the deadline of a whole call; an httpx.Timeout caps each phase
        # too, and its read value is then the deadline.
        if isinstance(timeout, httpx.Timeout):
            self._phases = timeout
            self.timeout = float(timeout.read or DEFAULT_TIMEOUT)
        else:
            self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
            self._phases = httpx.Timeout(self.timeout, connect=min(DEFAULT_CONNECT_TIMEOUT, self.timeout))
        _positive("timeout", self.timeout)
        _positive("stream_idle_timeout", stream_idle_timeout)
        if max_retries < 0 or max_resumes < 0:
            raise ValueError("max_retries and max_resumes must be >= 0")
        self.max_retries = max_retries
        self.max_resumes = max_resumes
        self._parsed: dict[str, httpx.URL] = {}  # see _build
        self.stream_idle_timeout = float(stream_idle_timeout)
        self.limits = limits or Limits()
        # One limiter for every request of this client: a 429 pauses them all until its Retry-After.
        self._paused_until = 0.0

    def options(self) -> dict[str, Any]:
        """What this client was made with, but the key and the HTTP client: enough to make its
        twin of the other flavour (sync <-> async). Clients with options of their own add them."""
        return {"base_url": self.base_url, "timeout": self.timeout, "max_retries": self.max_retries,
                "stream_idle_timeout": self.stream_idle_timeout, "max_resumes": self.max_resumes,
                "limits": self.limits}

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    # -- deadlines ----------------------------------------------------------------------
    def _deadline(self, call: Call[Any]) -> float:
        """When the call must be over (time.monotonic()); a stream's deadline covers its headers."""
        seconds = self.timeout if call.timeout is None else call.timeout
        _positive("timeout", seconds)
        return time.monotonic() + seconds

    def _timeout_error(self, call: Call[Any], deadline_seconds: float | None = None) -> APITimeoutError:
        seconds = deadline_seconds or (self.timeout if call.timeout is None else call.timeout)
        return APITimeoutError(f"{call.method} {call.path if not call.absolute else '(storage host)'} "
                               f"got no complete answer within its {seconds:g} s timeout")

    def _phase_timeout(self, call: Call[Any], deadline: float) -> httpx.Timeout:
        """Per-phase timeouts that never reach past the deadline (a stream reads by its idle timeout)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._timeout_error(call)
        phases = self._phases
        read = self.stream_idle_timeout if call.stream else min(phases.read or left, left)
        return httpx.Timeout(connect=min(phases.connect or left, left), read=read,
                             write=min(phases.write or left, left), pool=min(phases.pool or left, left))

    # -- building ---------------------------------------------------------------------
    def _url(self, call: Call[Any]) -> str:
        return call.path if call.absolute else self.base_url + call.path

    def _headers(self, call: Call[Any], url: str) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if call.stream else "application/json",
                   "Accept-Encoding": ACCEPT_ENCODING}
        if call.stream:
            headers["Cache-Control"] = "no-store"
        if call.headers:
            headers.update(call.headers)
        if call.needs_key:
            if self._api_key is None:
                raise MissingAPIKeyError(self.DIALECT.key_env)
            # The key goes to the API's own host only, never to a storage or download host.
            if url == self.base_url or url.startswith(self.base_url + "/"):
                headers.update(self.DIALECT.auth(self._api_key))
        return headers

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any],
               deadline: float) -> httpx.Request:
        url = self._url(call)
        # Each address parsed once (httpx parses a string on every request: ~11 us, a quarter of
        # building one); an httpx.URL is immutable, so one serves every request to it. Bounded.
        parsed = self._parsed.get(url)
        if parsed is None:
            if len(self._parsed) >= MAX_PARSED_URLS:
                self._parsed.clear()
            parsed = self._parsed[url] = httpx.URL(url)
        return http.build_request(
            call.method,
            parsed,
            params=call.params,
            json=call.json,
            content=call.content,
            files=call.files,
            data=call.data,
            headers=self._headers(call, url),
            timeout=self._phase_timeout(call, deadline),
        )

    # -- redirects --------------------------------------------------------------------
    # Followed only when the caller's own HTTP client says so (ours never does), one hop at a
    # time through httpx's `response.next_request` (httpx decides the method and body of each
    # hop), so that the key is taken off any hop to another origin: httpx itself keeps every
    # header but `Authorization` across origins, and that one even to https on the same host.
    def _next_hop(self, http: httpx.Client | httpx.AsyncClient, response: httpx.Response,
                  hops: int) -> httpx.Request | None:
        """The request a redirect asks for, without the key off the API's origin; None to stop."""
        following = response.next_request
        if following is None or not http.follow_redirects:
            return None
        if hops >= http.max_redirects:
            raise APIConnectionError(f"more than {http.max_redirects} redirects (max_redirects of the HTTP client)")
        if _origin(following.url) != _origin(httpx.URL(self.base_url)):
            following.headers.pop(self.DIALECT.key_header, None)
        return following

    # -- retrying ---------------------------------------------------------------------
    def _fits(self, delay: float, deadline: float) -> bool:
        return time.monotonic() + delay < deadline

    def _pause_left(self) -> float:
        """Seconds every request of this client still waits after a 429 (0 when none)."""
        return max(self._paused_until - time.monotonic(), 0.0)

    def _pause_before_send(self, deadline: float, *, retrying: bool = False) -> float:
        """Seconds to wait before sending, while a 429 pauses this client; a pause longer than
        a client waits (60 s) or than this call's deadline fails the call at once, unsent.
        A request tried before (`retrying`) goes first when the pause ends: the others wait
        RETRIES_FIRST longer. Otherwise the refused one woke last, behind every request that was
        only paused, and a server refusing by arrival order could refuse it every time."""
        pause = self._pause_left()
        if pause and not retrying:
            pause += RETRIES_FIRST
        if pause and (pause > MAX_RETRY_AFTER or not self._fits(pause, deadline)):
            raise RateLimitError(f"not sent: a 429 asked this client to wait {pause:.1f} s more, longer than "
                                 "this call can wait", status_code=429, retry_after=round(pause, 1))
        return pause

    def _retry_after_status(self, call: Call[Any], attempt: int, response: httpx.Response, body: str,
                            deadline: float) -> float | None:
        """Seconds to wait before another try of a failed answer, or None to give up."""
        status = response.status_code
        worth = status in call.retry_statuses if call.retry_statuses is not None else (
            status in RETRY_STATUSES or status >= 500)
        if not worth:
            return None
        hint = retry_after(response.headers)
        if hint is not None and hint > MAX_RETRY_AFTER:
            # Longer than a client waits: fail now (the error carries retry_after) rather than
            # come back sooner than asked. A 429 holds every request of this client that long.
            if status == 429:
                self._paused_until = max(self._paused_until, time.monotonic() + hint)
            log.debug("%s %s: HTTP %s asks to wait %.0f s, over %g s: no retry", call.method, call.path,
                      status, hint, MAX_RETRY_AFTER)
            return None
        if attempt > self.max_retries:
            return None
        try:
            code = json.loads(body).get("code") if body else None
        except (ValueError, AttributeError, RecursionError):
            code = None
        if code in self.DIALECT.permanent_codes:
            return None
        delay = backoff_delay(attempt, hint)
        if status == 429:  # the server is overloaded by all of us, not by this request
            self._paused_until = max(self._paused_until, time.monotonic() + delay)
        if not self._fits(delay, deadline):
            log.debug("%s %s: HTTP %s, no retry: a %.2f s wait passes the deadline",
                      call.method, call.path, status, delay)
            return None
        log.debug("%s %s: HTTP %s, retry %d of %d in %.2f s", call.method, call.path, status, attempt,
                  self.max_retries, delay)
        return delay

    def _retry_after_exception(self, call: Call[Any], attempt: int, exc: httpx.TransportError,
                               deadline: float) -> float | None:
        # Failures that prove the request never reached the server are safe to repeat; an
        # idempotent call may also be repeated after a connection the server closed.
        if attempt > self.max_retries:
            return None
        safe = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) or (
            call.idempotent and isinstance(exc, RETRYABLE_ON_IDEMPOTENT))
        if not safe:
            return None
        delay = backoff_delay(attempt)
        if not self._fits(delay, deadline):
            return None
        log.debug("%s %s: %s, retry %d of %d in %.2f s", call.method, call.path, type(exc).__name__,
                  attempt, self.max_retries, delay)
        return delay

    def _transport_error(self, exc: httpx.TransportError) -> APIConnectionError:
        text = redact(f"{type(exc).__name__}: {exc}", self._api_key)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request timed out ({text})")
        return APIConnectionError(f"connection error ({text})")

    # -- reading ----------------------------------------------------------------------
    def _check_length(self, response: httpx.Response) -> None:
        """Refuse a body whose declared size is over the limit before reading any of it."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and not response.headers.get("content-encoding") \
                and int(declared) > self.limits.body:
            raise self._too_large(int(declared))

    def _too_large(self, size: int) -> LimitExceededError:
        limit = self.limits.body
        return LimitExceededError("body", limit, f"the answer's body is over {size:,} bytes "
                                  f"(limit Limits.body={limit:,}); nothing of it was kept")

    def _error(self, response: httpx.Response, body: str) -> APIError:
        hint = retry_after(response.headers)
        error = make_api_error(
            response.status_code,
            redact(body, self._api_key),
            request_id=response.headers.get("x-request-id"),
            reason=response.reason_phrase,
            codes=self.DIALECT.codes,
            retry_after=hint if hint is not None and hint >= 0 else None,
        )
        dialect = self.DIALECT
        if error.status_code == 404 and dialect.url_forms and dialect.route_missing(error):
            # No such route, so the base URL is not this system's API: say which URL was tried.
            url = redact(str(response.request.url).split("?")[0], self._api_key)
            return NotFoundError(
                f"{url} is not a {dialect.system} API route (404 without {dialect.system}'s error body); the base "
                f"URL {self.base_url!r} should be {dialect.url_forms}", status_code=404, body=error.body,
                request_id=error.request_id)
        return error

    def _parse(self, call: Call[T], response: httpx.Response, body: bytes) -> T:
        if not call.json_answer or not body.strip():
            return call.parse(None)
        check_values(body, self.limits.json_values, f"the {response.status_code} answer")
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError) as exc:
            text = body[:2000].decode(errors="replace")
            raise APIResponseValidationError(
                f"{response.status_code} answer is not JSON ({type(exc).__name__}): "
                f"{excerpt(redact(text, self._api_key))}",
                status_code=response.status_code,
                body=text,
            ) from None
        return call.parse(parsed)

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


RETRIES_FIRST = 0.002  # seconds a new request waits past a 429's pause, so the retried ones go first


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
