"""LocalServer: the embedded server on a background thread, bound to loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import uvicorn

from ._app import create_app
from ._config import ServerConfig
from ._demo import DEMO_APPS
from ._dify import PREFIX as DIFY_PREFIX
from ._dify import dify_key
from ._dify_workflow import WORKFLOW_DEMO
from ._http import ResetBoundary
from ._odyssey import PREFIX as ODYSSEY_PREFIX
from ._odyssey import WORKSPACE as ODYSSEY_WORKSPACE
from ._odyssey import odyssey_key
from ._pipelit import PREFIX as PIPELIT_PREFIX
from ._pipelit import pipelit_key


class LocalServer:
    """Run the embedded Atomemo-compatible server in this process. Keyword arguments are
    ServerConfig fields; `seed=0` fixes the sampler demo app's draws (same questions, same answers).

    >>> with LocalServer() as server:
    ...     client = Client(server.api_key, base_url=server.base_url)
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, db: str = ":memory:",
                 api_key: str | None = None, **config: Any) -> None:
        if api_key is not None:
            config["api_key"] = api_key
        self.config = ServerConfig(db=db, **config)
        self.host = host
        self._port = port
        self.asgi_app = create_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        state = f"running at {self.base_url}" if self.running else "stopped"
        return f"LocalServer({state})"

    # -- what a client needs to know ---------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/api"

    @property
    def dify_base_url(self) -> str:
        """Where the same demo apps answer as Dify's service API does."""
        return self.origin + DIFY_PREFIX

    @property
    def pipelit_base_url(self) -> str:
        """Where the demo apps answer as Pipelit's REST API does (its WebSocket: /ws/)."""
        return self.origin + PIPELIT_PREFIX

    @property
    def pipelit_api_key(self) -> str:
        """The emulator's Pipelit key (one user; the workflows are the demo apps' slugs)."""
        return pipelit_key(self.api_key)

    @property
    def odyssey_base_url(self) -> str:
        """Where the demo apps answer as OdysseyAI's chat API does (POST .../api/chat/message)."""
        return self.origin + ODYSSEY_PREFIX + "/api"  # the API's root form: a path is kept as given

    @property
    def odyssey_api_key(self) -> str:
        """The emulator's OdysseyAI key (its `x-api-key`)."""
        return odyssey_key(self.api_key)

    @property
    def odyssey_workspace_id(self) -> str:
        """The emulator's one workspace; its agent ids are the demo apps' slugs."""
        return ODYSSEY_WORKSPACE

    @property
    def apps(self) -> dict[str, dict[str, str]]:
        """slug -> {slug, name, app_id, trigger_id, dify_api_key} of every demo app."""
        return {slug: self.app(slug) for slug in DEMO_APPS}

    def app(self, slug: str = "support") -> dict[str, str]:
        if slug not in DEMO_APPS:
            raise KeyError(f"no demo app {slug!r}; there are {', '.join(DEMO_APPS)}")
        return DEMO_APPS[slug].public() | {"dify_api_key": dify_key(self.api_key, slug)}

    def demo(self, system: str, slug: str = "support") -> dict[str, Any]:
        """What a chat needs to talk to demo app `slug` as `system` speaks: its key, base URL
        and the system's settings (connect() passes them on as they are)."""
        if system == "dify" and slug == WORKFLOW_DEMO:  # Dify's one workflow app, no demo app of the others
            return {"api_key": dify_key(self.api_key, slug), "base_url": self.dify_base_url}
        app = self.app(slug)
        speaks: dict[str, dict[str, Any]] = {
            "atomemo": {"api_key": self.api_key, "base_url": self.base_url,
                        "app_id": app["app_id"], "trigger_id": app["trigger_id"]},
            "dify": {"api_key": app["dify_api_key"], "base_url": self.dify_base_url},
            "pipelit": {"api_key": self.pipelit_api_key, "base_url": self.pipelit_base_url, "workflow": slug},
            "odyssey": {"api_key": self.odyssey_api_key, "base_url": self.odyssey_base_url,
                        "workspace_id": self.odyssey_workspace_id, "agent_id": slug},
        }
        if system not in speaks:
            raise KeyError(f"the embedded server does not speak {system!r}; it speaks {', '.join(speaks)}")
        return speaks[system]

    def info(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "dify_base_url": self.dify_base_url,
                "pipelit_base_url": self.pipelit_base_url, "pipelit_api_key": self.pipelit_api_key,
                "odyssey_base_url": self.odyssey_base_url, "odyssey_api_key": self.odyssey_api_key,
                "odyssey_workspace_id": self.odyssey_workspace_id, "api_key": self.api_key,
                "apps": list(self.apps.values())}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> LocalServer:
        if self.running:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: an answer's head and body go out at once, not 40 ms
        # apart (Nagle's algorithm waiting on the client's delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(ResetBoundary(self.asgi_app), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1, backlog=1024)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=self._serve, args=(server, sock),
                                        name="atomemo-local-server", daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the embedded server failed to start")
            self._thread.join(0.01)
        return self

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        asyncio.run(server.serve(sockets=[sock]))

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def close(self) -> None:
        """Stop serving and close the database."""
        self.stop()
        self.asgi_app.state.emulator.store.close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
