"""connect(): one entry point that names the system and returns the Chat (or AsyncChat) you
know, talking to that system. With no key anywhere, the embedded demo server plays the
system offline."""

from __future__ import annotations

import os
from typing import Any

from ..model.chat import AsyncChat, Chat
from ..protocol.errors import MissingAPIKeyError
from ..transport.client import AsyncClient, Client
from ..transport.dify import AsyncDifyClient, DifyClient
from ..transport.odyssey import AsyncOdysseyClient, OdysseyClient
from ..transport.pipelit import AsyncPipelitClient, PipelitClient
from . import runtime

__all__ = ["SYSTEMS", "as_async", "connect"]

SYSTEMS = ("atomemo", "dify", "pipelit", "odyssey")
DEFAULT_USER = "notebook-user"


def _env(system: str, name: str) -> str | None:
    return os.environ.get(f"{system.upper()}_{name}") or None


# What points a system at a server of the user's own (besides its key): arguments and the
# environment variables of the same names. Any of them without a key is an error, never the demo.
POINTERS = {"atomemo": ("base_url", "app_id", "trigger_id"), "dify": ("base_url",),
            "pipelit": ("base_url", "workflow"), "odyssey": ("base_url", "workspace_id", "agent_id")}
ATOMEMO_IDS_HELP = (
    "with an Atomemo key, give app_id and trigger_id (or set ATOMEMO_APP_ID and ATOMEMO_TRIGGER_ID). "
    "Atomemo has no call that lists apps (it describes an app by its id only): both ids are shown in "
    "Atomemo where the workflow's Chat Trigger is published, beside the chatflow API key (the app "
    "id is also in the app's address in the editor; the trigger id is the Chat Trigger node's id). "
    "ChatWidget(demo='support') or connect(..., offline=True) uses the offline demo instead.")


def _offline(name: str, key: str | None, offline: bool | None, given: dict[str, Any]) -> bool:
    """Whether the embedded demo answers: when asked to, or when no key and nothing points elsewhere."""
    if offline:
        return True
    if key:
        return False
    pointing = [f"{arg}=" for arg in POINTERS[name] if given.get(arg)]
    pointing += [f"{name.upper()}_{arg.upper()}" for arg in POINTERS[name] if _env(name, arg.upper())]
    if pointing or offline is False:
        raise MissingAPIKeyError(f"{name.upper()}_API_KEY",
                                 " and ".join(pointing) if pointing else "offline=False")
    return True


def connect(system: str = "atomemo", *, api_key: str | None = None, base_url: str | None = None,
            user_id: str | None = None, app_id: str | None = None, trigger_id: str | None = None,
            workflow: str | None = None, workspace_id: str | None = None, agent_id: str | None = None,
            memory: bool = True, demo: str | None = None, offline: bool | None = None,
            conversation_id: str | None = None, inputs: dict[str, Any] | None = None, source: str | None = None,
            asynchronous: bool = False, **client_options: Any) -> Any:
    """A conversation with a workflow on `system` ("atomemo", "dify", "pipelit" or "odyssey").

    Keys come from `api_key` or the system's environment variables (ATOMEMO_API_KEY,
    DIFY_API_KEY, PIPELIT_API_KEY, ODYSSEY_API_KEY, ...; base URLs, user ids, Pipelit's workflow,
    OdysseyAI's workspace and agent likewise). `memory=False`: OdysseyAI's agent forgets the turns before.
    With no key and nothing pointing at a server (no base URL, app, workflow, workspace or agent,
    given or in the environment), the embedded demo server answers as that system, offline, with
    the `demo` app ("support" unless named); a setting without a key raises MissingAPIKeyError
    naming the variable to set. `offline=True`, or naming a `demo`, uses the demo whatever the
    environment says. `asynchronous=True` returns an AsyncChat. A sync chat reopened with
    `conversation_id` loads its history at once."""
    name = system.lower().strip()
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")
    forced = offline or demo is not None
    key = None if forced else (api_key or _env(name, "API_KEY"))
    given = {"base_url": base_url, "app_id": app_id, "trigger_id": trigger_id, "workflow": workflow,
             "workspace_id": workspace_id, "agent_id": agent_id}
    is_offline = _offline(name, key, True if forced else offline, given)
    demo = demo or "support"
    user = user_id or _env(name, "USER_ID") or DEFAULT_USER
    where: dict[str, Any] = {}
    origin = {"offline": is_offline, "demo": demo if is_offline else None}
    if is_offline:
        server = runtime.demo_server()
        app = server.app(demo)
        if name == "atomemo":
            key, base_url = server.api_key, server.base_url
            where = {"app_id": app["app_id"], "trigger_id": app["trigger_id"]}
        elif name == "dify":
            key, base_url = app["dify_api_key"], server.dify_base_url
        elif name == "pipelit":
            key, base_url = server.pipelit_api_key, server.pipelit_base_url
            where = {"workflow": demo}
        else:
            key, base_url = server.odyssey_api_key, server.odyssey_base_url
            where = {"workspace_id": server.odyssey_workspace_id, "agent_id": demo, "memory": memory}
    elif name == "atomemo":
        where = {"app_id": app_id or _env(name, "APP_ID"),
                 "trigger_id": trigger_id or _env(name, "TRIGGER_ID")}
        if not where["app_id"] or not where["trigger_id"]:
            raise ValueError(ATOMEMO_IDS_HELP)
    elif name == "pipelit":
        where = {"workflow": workflow or _env(name, "WORKFLOW")}
        if not where["workflow"]:
            raise ValueError("with a Pipelit key, give workflow=<the workflow's slug> (or set PIPELIT_WORKFLOW)")
    elif name == "odyssey":
        where = {"workspace_id": workspace_id or _env(name, "WORKSPACE_ID"),
                 "agent_id": agent_id or _env(name, "AGENT_ID"), "memory": memory}
        if not where["workspace_id"]:
            raise ValueError("with an OdysseyAI key, give workspace_id=... (or set ODYSSEY_WORKSPACE_ID)")
    base_url_used = base_url if is_offline else (base_url or _env(name, "BASE_URL"))
    clients = {("atomemo", False): Client, ("atomemo", True): AsyncClient,
               ("dify", False): DifyClient, ("dify", True): AsyncDifyClient,
               ("pipelit", False): PipelitClient, ("pipelit", True): AsyncPipelitClient,
               ("odyssey", False): OdysseyClient, ("odyssey", True): AsyncOdysseyClient}
    client = clients[name, asynchronous](key, base_url=base_url_used, **client_options)
    kind = AsyncChat if asynchronous else Chat
    chat = kind(client, user_id=user, inputs=inputs, conversation_id=conversation_id, source=source, **where)
    chat.origin = origin
    chat.owns_client = True
    if conversation_id is not None and isinstance(chat, Chat):
        chat.history()
    return chat


def as_async(chat: Chat | AsyncChat) -> AsyncChat:
    """The same conversation as an AsyncChat (the widget runs on an event loop)."""
    if isinstance(chat, AsyncChat):
        return chat
    client = chat.client
    twins: dict[type, type] = {Client: AsyncClient, DifyClient: AsyncDifyClient, PipelitClient: AsyncPipelitClient,
                               OdysseyClient: AsyncOdysseyClient}
    twin = twins.get(type(client))
    if twin is None:
        raise TypeError(f"cannot run a chat over {type(client).__name__} in the widget; pass an AsyncChat")
    async_client = twin(client._api_key, **client.options())
    coordinates = chat.backend.coordinates()
    out = AsyncChat(async_client, app_id=coordinates.get("app_id"), trigger_id=coordinates.get("trigger_id"),
                    workflow=coordinates.get("workflow"), workspace_id=coordinates.get("workspace_id"),
                    agent_id=coordinates.get("agent_id"), memory=coordinates.get("memory", True),
                    user_id=chat.user_id, inputs=chat.inputs, conversation_id=chat.conversation_id,
                    source=chat.source)
    out.origin = chat.origin
    out.owns_client = True  # the async twin of the client is ours
    out.tree, out.replies, out.leaf_id = chat.tree, chat.replies, chat.leaf_id
    out.app, out._node_names = chat.app, chat._node_names
    return out
