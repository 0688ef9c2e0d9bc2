"""The systems this package speaks, one line each: the one list that connect(), the widget's
header, saved logs and the evaluation views read. Adding a system is a folder under protocol/
with its `System` record, and a line here."""

from __future__ import annotations

from typing import Any

from ._neutral import Capabilities
from ._system import System, Translate
from ._wire import Event
from .atomemo._system import SYSTEM as ATOMEMO
from .dify._system import SYSTEM as DIFY
from .odyssey._system import SYSTEM as ODYSSEY
from .pipelit._system import SYSTEM as PIPELIT

__all__ = ["SYSTEMS", "capabilities_of", "event_for", "system", "system_label", "translator_for"]

SYSTEMS: dict[str, System] = {s.name: s for s in (ATOMEMO, DIFY, PIPELIT, ODYSSEY)}

HOME = ATOMEMO.name  # logs written before systems had names are Atomemo's


def system(name: str | None) -> System:
    """The system called `name` (case and spaces forgiven), or a ValueError naming the known ones."""
    key = (name or HOME).lower().strip()
    if key not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")
    return SYSTEMS[key]


def translator_for(name: str | None) -> Translate:
    """A fresh translator for system `name` (default Atomemo: logs written before systems had names)."""
    try:
        return system(name).translator()
    except ValueError:
        raise ValueError(f"no adapter for system {name!r}; known: {', '.join(SYSTEMS)}") from None


def event_for(name: str | None, event: str, data: Any) -> Event:
    """A saved event as its system's parser would have made it."""
    return system(name).event(event, data)


def capabilities_of(name: str) -> Capabilities:
    """What system `name` can do (views of saved or evaluated runs, with no backend at hand)."""
    return system(name).capabilities


def system_label(name: str) -> str:
    """What the widget's header names a system by: "" for the home system (no chip); a name this
    package does not know, as it is."""
    return SYSTEMS[name].shown_label if name in SYSTEMS else name
