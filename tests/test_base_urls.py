"""A base URL in either form, for every system: the server's root (as each system's docs write
the host) or its API's root; and a base URL that is neither answers a route-less 404 that names
the URL tried and the forms expected, while the system's own 404s ("no such app") stay as they
are. One decision, the Dialect's (`api_root`, `route_missing`), used by every client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from atomemo_notebook import Client, DifyClient, NotFoundError, OdysseyClient, PipelitClient
from atomemo_notebook.protocol.atomemo._dialect import ATOMEMO
from atomemo_notebook.protocol.dify._dialect import DIFY
from atomemo_notebook.protocol.odyssey._dialect import ODYSSEY
from atomemo_notebook.protocol.pipelit._dialect import PIPELIT
from atomemo_notebook.server import LocalServer


@pytest.mark.parametrize(("dialect", "root", "api"), [
    (ATOMEMO, "https://server.atomemo.ai", "https://server.atomemo.ai/api"),
    (DIFY, "https://api.dify.ai", "https://api.dify.ai/v1"),
    (PIPELIT, "http://localhost:8000", "http://localhost:8000/api/v1"),
    (ODYSSEY, "https://odyssey.example", "https://odyssey.example/api"),
])
def test_the_root_gets_the_apis_path_and_a_path_is_kept(dialect, root, api):
    assert dialect.api_root(root) == dialect.api_root(root + "/") == api
    assert dialect.api_root(api) == api
    assert dialect.api_root("https://proxy.example/prefix") == "https://proxy.example/prefix"  # a proxy's: kept


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalServer]:
    with LocalServer(test_mode=True, chunk_delay=0, node_delay=0, pipelit_frame_gap=0) as server:
        yield server


def test_atomemo_both_forms_and_a_wrong_one(emulator):
    app_id = emulator.app("support")["app_id"]
    for base in (emulator.origin, emulator.origin + "/api"):
        with Client(emulator.api_key, base_url=base) as api:
            assert api.base_url == emulator.origin + "/api" and api.get_app(app_id).id == app_id
    with Client(emulator.api_key, base_url=emulator.origin + "/elsewhere") as wrong, \
            pytest.raises(NotFoundError) as lost:
        wrong.get_app(app_id)
    assert f"{emulator.origin}/elsewhere/chat/app/{app_id} is not a atomemo API route" in str(lost.value)
    assert "https://server.atomemo.ai or https://server.atomemo.ai/api" in str(lost.value)
    with Client(emulator.api_key, base_url=emulator.origin) as api, pytest.raises(NotFoundError) as missing:
        api.get_app("no-such-app")
    assert "route" not in str(missing.value)  # Atomemo's own 404: the app, not the URL


def test_dify_both_forms_and_a_wrong_one(emulator):
    key = emulator.app("echo")["dify_api_key"]
    for base in (emulator.origin, emulator.origin + "/v1"):
        with DifyClient(key, base_url=base) as api:
            assert api.info()["name"]
    # Another system's API on the same host (here the emulator's Pipelit): no Dify route there.
    with DifyClient(key, base_url=emulator.origin + "/api/v1") as wrong, pytest.raises(NotFoundError) as lost:
        wrong.info()
    assert f"{emulator.origin}/api/v1/info is not a dify API route" in str(lost.value)
    assert "https://api.dify.ai/v1" in str(lost.value)


def test_pipelit_both_forms_and_a_wrong_one(emulator):
    for base in (emulator.origin, emulator.origin + "/api/v1/"):
        with PipelitClient(emulator.pipelit_api_key, base_url=base) as api:
            assert api.workflow("echo")["slug"] == "echo"
    with PipelitClient(emulator.pipelit_api_key, base_url=emulator.origin + "/api") as wrong, \
            pytest.raises(NotFoundError) as lost:
        wrong.workflow("echo")
    # Before: NotFoundError('404: Not Found'), nothing about the URL.
    assert f"{emulator.origin}/api/workflows/echo/ is not a pipelit API route" in str(lost.value)
    assert "http://localhost:8000" in str(lost.value) and emulator.pipelit_api_key not in str(lost.value)
    with PipelitClient(emulator.pipelit_api_key, base_url=emulator.origin) as api, \
            pytest.raises(NotFoundError) as missing:
        api.workflow("no-such-workflow")
    assert missing.value.message == "Workflow not found." and "route" not in str(missing.value)


@pytest.fixture(scope="module")
def odyssey_host() -> Iterator[tuple[str, list[str]]]:
    """An OdysseyAI stand-in at a root of its own: POST /api/chat/message answers, anything else
    is a framework's 404 (text, not OdysseyAI's error body)."""
    seen: list[str] = []

    async def anything(request: Request) -> Response:
        seen.append(request.url.path)
        if request.url.path == "/api/chat/message":
            return JSONResponse({"data": {"id": "a1", "rootAgentName": "root", "sourceSnips": [],
                                          "stepsBreakdown": [{"agentname": "root", "type": "answer",
                                                              "step_id": "end", "content": "hello"}]}})
        if request.url.path == "/api/missing-conversation":
            return JSONResponse({"error": {"message": "Conversation or workspace not found."}}, status_code=404)
        return PlainTextResponse(f"Cannot POST {request.url.path}", status_code=404)

    app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    server.should_exit = True
    thread.join(10)


def ask(api: OdysseyClient) -> Any:
    return api.send_message(workspace_id="w", conversation_id="c", message="hi", user_id="u")


def test_odyssey_both_forms_and_a_wrong_one(odyssey_host):
    origin, seen = odyssey_host
    for base in (origin, origin + "/api"):
        with OdysseyClient("ody-key", base_url=base) as api:
            assert ask(api)["id"] == "a1"
    assert seen[-2:] == ["/api/chat/message", "/api/chat/message"]
    with OdysseyClient("ody-key", base_url=origin + "/v2") as wrong, pytest.raises(NotFoundError) as lost:
        ask(wrong)
    assert f"{origin}/v2/chat/message is not a odyssey API route" in str(lost.value)
    assert "https://<host>/api" in str(lost.value)
