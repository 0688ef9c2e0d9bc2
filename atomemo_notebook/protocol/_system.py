"""What makes a chat system one unit: its name and label, its HTTP dialect, how its events read
and translate, what it can do, and the settings that point a chat at one of its servers. One
`System` per system, in protocol/<system>/system.py; protocol/_systems.py lists them, and
everything that must know a system by name (connect, the widget's header, saved logs, the
evaluation views) reads that one list."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import _neutral as n
from ._dialect import Dialect
from ._wire import Event

if TYPE_CHECKING:
    from .backend import MakeBackend

__all__ = ["Setting", "System", "Translate", "plain_event"]

Translate = Callable[[Event], Sequence[n.Neutral]]


def plain_event(name: str, data: Any) -> Event:
    """A saved event of a system whose events need no parsing beyond their JSON."""
    return Event(name, data if isinstance(data, dict) else None)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One of connect()'s arguments for a system, and the environment variable of the same
    meaning (ATOMEMO_APP_ID for app_id on Atomemo)."""

    name: str
    required: bool = False  # a chat with a key cannot do without it
    missing: str = ""  # the error when it is required and missing


@dataclasses.dataclass(frozen=True)
class System:
    name: str  # "dify": connect()'s first argument, a saved log's header, a cache's
    label: str  # "Dify": what the views show
    dialect: Dialect
    translator: Callable[[], Translate]  # a fresh translator per reply (it may keep state)
    capabilities: n.Capabilities
    backend: MakeBackend  # the chat's backend, from the client's base URL and connect()'s settings
    # connect()'s arguments that point a chat at a server of one's own, besides the key and
    # the base URL every system has; given without a key, they are an error, never the demo.
    settings: tuple[Setting, ...] = ()
    event: Callable[[str, Any], Event] = plain_event  # a saved event as the system's parser made it
    home: bool = False  # the package's own system: the views name no system for it
    no_usage: str = ""  # why its answers carry no token usage or cost, when they never do

    @property
    def setting_names(self) -> tuple[str, ...]:
        return ("base_url", *(s.name for s in self.settings))

    def env(self, name: str) -> str | None:
        """The system's environment variable for setting `name` ("api_key" -> DIFY_API_KEY)."""
        return os.environ.get(f"{self.name.upper()}_{name.upper()}") or None

    @property
    def shown_label(self) -> str:
        """The label the widget's header shows: none for the home system."""
        return "" if self.home else self.label
