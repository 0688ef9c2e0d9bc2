"""HTTP plumbing shared by the server's routes: the JSON error, request field readers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """An error answer: JSON `{"code": ..., "message": ...}` with a fitting status."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "message": self.message}, status_code=self.status,
                            headers=self.headers)


class InjectedResponse(Exception):
    """A ready response, raised to short-cut a handler (fault injection only)."""

    def __init__(self, response: Response) -> None:
        super().__init__("injected response")
        self.response = response


def storage_host(request: Request) -> str:
    """Where uploads go and downloads come from: this same process, under /storage."""
    return str(request.base_url).rstrip("/") + "/storage"


def param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ApiError(422, "VALIDATION_ERROR", f"query parameter {name!r} is required")
    return value


def field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "VALIDATION_ERROR", f"{name!r} must be a non-empty string")
    return value


def optional_field(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else field(body, name)
