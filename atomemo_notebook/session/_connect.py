"""connect(): one entry point that names the system and returns the Chat (or AsyncChat) you
know, talking to that system. With no key anywhere, the embedded demo server plays the
system offline. What each system needs comes from its `System` record (protocol/_systems.py):
nothing here names a system."""

from __future__ import annotations

from typing import Any, Literal, overload

from .. import transport  # noqa: F401  # each system's client module registers its classes
from ..model.chat import AsyncChat, Chat
from ..protocol._errors import MissingAPIKeyError
from ..protocol._system import System
from ..protocol._systems import SYSTEMS
from ..protocol._systems import system as system_named
from ..transport._base_client import BaseClient, client_class
from ..transport._client import AsyncHttp, SyncHttp
from . import _runtime as runtime

__all__ = ["DEFAULT_USER", "as_async", "connect"]

DEFAULT_USER = "notebook-user"


def _offline(system: System, key: str | None, offline: bool | None, settings: dict[str, Any]) -> bool:
    """Whether the embedded demo answers: when asked to, or when no key and nothing points elsewhere."""
    if offline:
        return True
    if key:
        return False
    pointing = [f"{name}=" for name in system.setting_names if settings.get(name)]
    pointing += [f"{system.name.upper()}_{name.upper()}" for name in system.setting_names if system.env(name)]
    if pointing or offline is False:
        raise MissingAPIKeyError(f"{system.name.upper()}_API_KEY",
                                 " and ".join(pointing) if pointing else "offline=False")
    return True


def _split(system: System, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """connect()'s extra arguments: the system's settings, and the client's options (timeout,
    max_retries, ...). Another system's setting is a mistake worth naming, not a client option."""
    others = {s.name for other in SYSTEMS.values() for s in other.settings} - set(system.setting_names)
    for name in [name for name in given if name in others and given[name] is None]:
        del given[name]  # None: not given (ChatWidget passes every system's arguments on)
    wrong = sorted(name for name in given if name in others)
    if wrong:
        raise TypeError(f"{system.label} takes no {', '.join(wrong)}; its settings: {', '.join(system.setting_names)}")
    settings = {name: given.pop(name) for name in system.setting_names if name in given}
    return settings, given


@overload
def connect(system: str = ..., *, api_key: str | None = ..., user_id: str | None = ..., memory: bool = ...,
            demo: str | None = ..., offline: bool | None = ..., conversation_id: str | None = ...,
            inputs: dict[str, Any] | None = ..., source: str | None = ..., asynchronous: Literal[False] = ...,
            **settings: Any) -> Chat: ...
@overload
def connect(system: str = ..., *, api_key: str | None = ..., user_id: str | None = ..., memory: bool = ...,
            demo: str | None = ..., offline: bool | None = ..., conversation_id: str | None = ...,
            inputs: dict[str, Any] | None = ..., source: str | None = ..., asynchronous: Literal[True],
            **settings: Any) -> AsyncChat: ...


def connect(system: str = "atomemo", *, api_key: str | None = None, user_id: str | None = None,
            memory: bool = True, demo: str | None = None, offline: bool | None = None,
            conversation_id: str | None = None, inputs: dict[str, Any] | None = None, source: str | None = None,
            asynchronous: bool = False, **settings: Any) -> Chat | AsyncChat:
    """A conversation with a workflow on `system` ("atomemo", "dify", "pipelit" or "odyssey").

    `settings` are the system's own (`base_url` for all; Atomemo's `app_id` and `trigger_id`,
    Pipelit's `workflow`, OdysseyAI's `workspace_id` and `agent_id`) and the client's options
    (`timeout`, `max_retries`, ...). Keys come from `api_key` or the system's environment
    variables (ATOMEMO_API_KEY, DIFY_API_KEY, PIPELIT_API_KEY, ODYSSEY_API_KEY, ...; each
    setting likewise: DIFY_BASE_URL, PIPELIT_WORKFLOW, ...). `memory=False`: OdysseyAI's agent
    forgets the turns before.
    With no key and nothing pointing at a server (no base URL, app, workflow, workspace or agent,
    given or in the environment), the embedded demo server answers as that system, offline, with
    the `demo` app ("support" unless named); a setting without a key raises MissingAPIKeyError
    naming the variable to set. `offline=True`, or naming a `demo`, uses the demo whatever the
    environment says. `asynchronous=True` returns an AsyncChat. A sync chat reopened with
    `conversation_id` loads its history at once."""
    spec = system_named(system)
    given, client_options = _split(spec, dict(settings))
    forced = offline or demo is not None
    key = None if forced else (api_key or spec.env("api_key"))
    is_offline = _offline(spec, key, True if forced else offline, given)
    demo = demo or "support"
    user = user_id or spec.env("user_id") or DEFAULT_USER
    if is_offline:
        where = runtime.demo_server().demo(spec.name, demo)
        key = where.pop("api_key")
    else:
        where = {name: given.get(name) or spec.env(name) for name in spec.setting_names}
        for setting in spec.settings:
            if setting.required and not where[setting.name]:
                raise ValueError(setting.missing)
    base_url = where.pop("base_url", None)
    client = client_class(spec.name, asynchronous)(key, base_url=base_url, **client_options)
    chat = _chat_over(client, user_id=user, inputs=inputs, conversation_id=conversation_id, source=source,
                      memory=memory, **where)
    chat.origin = {"offline": is_offline, "demo": demo if is_offline else None}
    chat.owns_client = True
    if conversation_id is not None and isinstance(chat, Chat):
        chat.history()
    return chat


def _chat_over(client: BaseClient, **options: Any) -> Chat | AsyncChat:
    """A Chat over a sync client, an AsyncChat over an async one."""
    if isinstance(client, AsyncHttp):
        return AsyncChat(client, **options)
    if isinstance(client, SyncHttp):
        return Chat(client, **options)
    raise TypeError(f"{type(client).__name__} cannot carry a chat")


def as_async(chat: Chat | AsyncChat) -> AsyncChat:
    """The same conversation as an AsyncChat (the widget runs on an event loop)."""
    if isinstance(chat, AsyncChat):
        return chat
    client = chat.client
    async_client = client_class(client.DIALECT.system, True)(client._api_key, **client.options())
    if not isinstance(async_client, AsyncHttp):
        raise TypeError(f"cannot run a chat over {type(client).__name__} in the widget; pass an AsyncChat")
    coordinates = chat.backend.coordinates()
    spec = system_named(chat.system)
    where = {s.name: coordinates.get(s.name) for s in spec.settings}
    out = AsyncChat(async_client, memory=coordinates.get("memory", True), user_id=chat.user_id, inputs=chat.inputs,
                    conversation_id=chat.conversation_id, source=chat.source, **where)
    out.origin = chat.origin
    out.owns_client = True  # the async twin of the client is ours
    out.tree, out.replies, out.leaf_id = chat.tree, chat.replies, chat.leaf_id
    out.app, out._node_names = chat.app, chat._node_names
    return out
