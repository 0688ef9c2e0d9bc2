"""Files: upload by URL, the 3-step upload (token, PUT to the storage host, download URL),
and the storage host itself, served by this same process. Tokens and links are HMAC-signed
and expire; the secret is kept in the database so links survive a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import mimetypes
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._http import ApiError, field, param, storage_host

if TYPE_CHECKING:
    from ._app import Emulator


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs upload tokens and download links (HMAC-SHA256, expiring)."""

    def __init__(self, secret: bytes, ttl: float) -> None:
        self.secret, self.ttl = secret, ttl

    def sign(self, *parts: str) -> str:
        return _b64(hmac.new(self.secret, "\n".join(parts).encode(), hashlib.sha256).digest()[:24])

    def upload_token(self, res_key: str, mime_type: str) -> str:
        claims = {"k": res_key, "m": mime_type, "e": int(time.time() + self.ttl)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self.sign('up', payload)}"

    def check_upload_token(self, token: str, res_key: str) -> dict[str, Any]:
        payload, _, sig = token.partition(".")
        # Bytes, not str: compare_digest refuses non-ASCII text with a TypeError.
        if not sig or not hmac.compare_digest(sig.encode(), self.sign("up", payload).encode()):
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token is invalid")
        try:
            claims = json.loads(_unb64(payload))
        except ValueError:
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token is malformed") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("e"), int) \
                or not isinstance(claims.get("m"), str):
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token is malformed")
        if claims.get("k") != res_key:
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token is for another resKey")
        if claims.get("e", 0) < time.time():
            raise ApiError(403, "INVALID_UPLOAD_TOKEN", "upload token has expired")
        return claims

    def download_link(self, request: Request, res_key: str) -> str:
        expires = str(int(time.time() + self.ttl))
        return f"{storage_host(request)}/{res_key}?e={expires}&token={self.sign('down', res_key, expires)}"

    def link_is_valid(self, res_key: str, expires: str, token: str) -> bool:
        return (hmac.compare_digest(token.encode(), self.sign("down", res_key, expires).encode())
                and expires.isascii() and expires.isdigit() and int(expires) >= time.time())


def file_ref(signer: Signer, request: Request, res_key: str, filename: str, mime: str,
             size: int) -> dict[str, Any]:
    return {"__type__": "file_ref", "source": "oss", "filename": filename,
            "extension": os.path.splitext(filename)[1], "mimeType": mime, "size": size,
            "resKey": res_key, "remoteUrl": signer.download_link(request, res_key)}


def _now_compact() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d")


def file_routes(emu: Emulator) -> list[Route]:
    signer = emu.signer

    async def upload_by_url(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        url = field(await emu.json_body(request), "url")
        config = emu.config
        content, mime, final_url = await fetch_public(
            url, limit=config.max_upload_bytes, timeout=config.url_fetch_timeout,
            allow_private=config.allow_loopback_urls, allowed_origins=config.allowed_url_origins)
        filename = unquote(os.path.basename(urlsplit(final_url).path)) or "download"
        if "." not in filename:
            filename += mimetypes.guess_extension(mime) or ""
        res_key = f"{_now_compact()}/{uuid.uuid4()}{os.path.splitext(filename)[1]}"
        emu.store.put_file(res_key, filename, mime, content)
        return JSONResponse(file_ref(signer, request, res_key, filename, mime, len(content)))

    async def uptoken(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        mime = request.query_params.get("mimeType") or ""
        ext = (mimetypes.guess_extension(mime) or "") if mime else ""
        res_key = f"workflow_input_files/{uuid.uuid4()}{ext}"
        return JSONResponse({"uptoken": signer.upload_token(res_key, mime), "resKey": res_key,
                             "uploadHost": storage_host(request)})

    async def download_url(request: Request) -> Response:
        emu.require_key(request)
        emu.fault(request)
        return JSONResponse({"data": signer.download_link(request, param(request, "resKey"))})

    async def storage_put(request: Request) -> Response:
        res_key = request.path_params["res_key"]
        try:
            claims = signer.check_upload_token(request.url.query, res_key)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ValueError:
            return JSONResponse({"error": "upload token is malformed"}, status_code=403)
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if claims["m"] and mime != claims["m"].lower():
            return JSONResponse({"error": f"Content-Type {mime!r} does not match the token's "
                                          f"{claims['m']!r}"}, status_code=415)
        limit = emu.config.max_upload_bytes
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            return JSONResponse({"error": f"file over {limit} bytes"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return JSONResponse({"error": f"file over {limit} bytes"}, status_code=413)
            chunks.append(chunk)
        filename = os.path.basename(res_key)
        emu.store.put_file(res_key, filename, mime or "application/octet-stream", b"".join(chunks))
        return JSONResponse({"resKey": res_key, "size": size})

    async def storage_get(request: Request) -> Response:
        res_key = request.path_params["res_key"]
        expires = request.query_params.get("e", "")
        token = request.query_params.get("token", "")
        if not signer.link_is_valid(res_key, expires, token):
            return JSONResponse({"error": "invalid or expired link"}, status_code=403)
        found = emu.store.get_file(res_key)
        if found is None:
            return JSONResponse({"error": "Document not found"}, status_code=404)
        filename, mime, content = found
        return Response(content, media_type=mime,
                        headers={"Content-Disposition": f'inline; filename="{filename}"'})

    return [
        Route("/api/chat/media/upload", upload_by_url, methods=["POST"]),
        Route("/api/chat/media/uptoken", uptoken, methods=["GET"]),
        Route("/api/chat/media/download_url", download_url, methods=["GET"]),
        Route("/storage/{res_key:path}", storage_put, methods=["PUT"]),
        Route("/storage/{res_key:path}", storage_get, methods=["GET"]),
    ]


MAX_REDIRECTS = 3


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not fetched for a user, or None: only public unicast is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind in ("loopback", "private", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "not public"


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ApiError(400, "URL_FETCH_FAILED", f"cannot resolve {host!r} ({type(exc).__name__})") from None
    return sorted({str(info[4][0]) for info in infos})


async def _target(url: str, allow_private: bool, allowed_origins: tuple[str, ...]) -> tuple[str, str, int]:
    """Check a URL and resolve its host once: (host, address to connect to, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # "Invalid IPv6 URL", a port out of range...
        raise ApiError(422, "VALIDATION_ERROR", f"'url' is not a valid URL ({exc})") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ApiError(422, "VALIDATION_ERROR", "'url' must be an http(s) URL")
    addresses = await _resolve(host, port)
    if not addresses:
        raise ApiError(400, "URL_FETCH_FAILED", f"{host!r} has no address")
    if allow_private or f"{host}:{port}" in allowed_origins:
        return host, addresses[0], port
    for text in addresses:
        reason = _refused(ipaddress.ip_address(text.split("%")[0]))
        if reason:
            raise ApiError(422, "URL_NOT_ALLOWED", f"{host!r} resolves to a {reason} address; "
                                                  "only public addresses are fetched")
    return host, addresses[0], port


async def fetch_public(url: str, *, limit: int, timeout: float, allow_private: bool = False,
                       allowed_origins: tuple[str, ...] = ()) -> tuple[bytes, str, str]:
    """GET a URL for a user, safely: each hop's host resolved once and connected to by that
    address (no second lookup to rebind), loopback/private/link-local/multicast refused,
    redirects followed by hand and checked the same way, time and size bounded.
    Returns (content, mime type, final URL)."""
    try:
        with anyio.fail_after(timeout):
            async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as http:
                for _ in range(MAX_REDIRECTS + 1):
                    host, address, port = await _target(url, allow_private, allowed_origins)
                    parts = urlsplit(url)
                    at = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
                    request = http.build_request(
                        "GET", parts._replace(netloc=at).geturl(),
                        headers={"Host": parts.netloc.rpartition("@")[2]}, extensions={"sni_hostname": host})
                    response = await http.send(request, stream=True)
                    try:
                        if response.is_redirect and response.headers.get("location"):
                            url = urljoin(url, response.headers["location"])
                            continue
                        return await _read_limited(response, limit, url)
                    finally:
                        await response.aclose()
                raise ApiError(400, "URL_FETCH_FAILED", f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError:
        raise ApiError(400, "URL_FETCH_FAILED", f"fetching the URL took over {timeout:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ApiError(400, "URL_FETCH_FAILED", f"could not fetch the URL ({type(exc).__name__})") from None


async def _read_limited(response: httpx.Response, limit: int, url: str) -> tuple[bytes, str, str]:
    if response.status_code >= 400:
        raise ApiError(400, "URL_FETCH_FAILED", f"fetching the URL gave HTTP {response.status_code}")
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "FILE_TOO_LARGE", f"file over {limit} bytes")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "FILE_TOO_LARGE", f"file over {limit} bytes")
        chunks.append(chunk)
    mime = response.headers.get("content-type", "").split(";")[0].strip()
    mime = mime or mimetypes.guess_type(url)[0] or "application/octet-stream"
    return b"".join(chunks), mime, url
