"""connect(): one entry point that names the system and returns the Chat (or AsyncChat) you
know, talking to that system. With no key anywhere, the embedded demo server plays the
system offline. What each system needs comes from its `System` record (protocol/_systems.py):
nothing here names a system."""

from __future__ import annotations

import inspect
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
    points = ("base_url", *(s.name for s in system.settings if s.points))
    pointing = [f"{name}=" for name in points if settings.get(name)]
    pointing += [f"{system.name.upper()}_{name.upper()}" for name in points if system.env(name)]
    if pointing or offline is False:
        raise MissingAPIKeyError(f"{system.name.upper()}_API_KEY",
                                 " and ".join(pointing) if pointing else "offline=False")
    return True


def _demo_for(system: System, demo: str | None, given: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The demo app an offline chat talks to and its settings: `demo`, else the app a given
    setting names (OdysseyAI's agent_id="echo", Pipelit's workflow="echo"), else "support". A
    setting no such app has is refused: another app never answers in its place."""
    server = runtime.demo_server()
    chosen = [s for s in given if s != "base_url" and given[s] is not None]  # the server is the demo's
    for slug in [demo] if demo else ["support", *[s for s in server.apps if s != "support"]]:
        where = server.demo(system.name, slug)
        if all(where.get(name) == given[name] for name in chosen):
            return slug, where
    settings = ", ".join(f"{name}={given[name]!r}" for name in chosen)
    raise ValueError(f"the offline demo has no {system.label} app with {settings}"
                     + (f" (demo={demo!r} was asked for)" if demo else "")
                     + f"; its apps: {', '.join(server.apps)}")


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
    Pipelit's `workflow`, OdysseyAI's `workspace_id` and `agent_id`, Dify's `app_type`: "workflow"
    for a workflow app, whose runs take inputs and give outputs) and the client's options
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
    kind = {s.name: given.get(s.name) or spec.env(s.name) for s in spec.settings if not s.points}
    for setting in spec.settings:
        setting.check(kind.get(setting.name))
    forced = offline or demo is not None
    key = None if forced else (api_key or spec.env("api_key"))
    is_offline = _offline(spec, key, True if forced else offline, given)
    user = user_id or spec.env("user_id") or DEFAULT_USER
    if is_offline:
        # The demo that plays the kind of app asked for (Dify's workflow app), unless one is named;
        # a kind is not a coordinate, so it is not matched against the demo's settings.
        plays = None
        for setting in spec.settings:
            plays = plays or dict(setting.demos).get(kind.get(setting.name) or "")
        demo, where = _demo_for(spec, demo or plays, {k: v for k, v in given.items() if k not in kind})
        where |= {k: v for k, v in kind.items() if v}
        key = where.pop("api_key")
    else:
        where = {name: given.get(name) or spec.env(name) for name in spec.setting_names}
        for setting in spec.settings:
            if setting.required and not where[setting.name]:
                raise ValueError(setting.missing)
    base_url = where.pop("base_url", None)
    cls = client_class(spec.name, asynchronous)
    unknown = sorted(set(client_options) - _options_of(cls))
    if unknown:
        raise TypeError(f"connect() takes no {', '.join(unknown)}: {spec.label}'s settings are "
                        f"{', '.join(spec.setting_names)}; its client's options are "
                        f"{', '.join(sorted(_options_of(cls) - {'http_client', 'base_url'}))}")
    client = cls(key, base_url=base_url, **client_options)
    chat = _chat_over(client, user_id=user, inputs=inputs, conversation_id=conversation_id, source=source,
                      memory=memory, **where)
    chat.origin = {"offline": is_offline, "demo": demo if is_offline else None}
    chat.owns_client = True
    if conversation_id is not None and isinstance(chat, Chat):
        chat.history()
    return chat


def _options_of(cls: type) -> set[str]:
    """The keywords a client class takes: each __init__ of its bases (they pass **kwargs on)."""
    names: set[str] = set()
    for base in cls.__mro__:
        init = base.__dict__.get("__init__")
        if init is not None:
            names |= {p.name for p in inspect.signature(init).parameters.values()
                      if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "api_key")}
    return names


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
