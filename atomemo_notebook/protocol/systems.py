"""Each system's wire, by name: the one place that knows which adapter reads which system's
events (for replaying a saved log, whose header names the system that spoke)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import neutral as n
from .atomemo import adapter as atomemo_adapter
from .atomemo.events import Event, event_from_wire
from .dify.adapter import DifyTranslator
from .odyssey.adapter import OdysseyTranslator
from .pipelit.adapter import PipelitTranslator

__all__ = ["SYSTEMS", "event_for", "system_label", "translator_for"]

Translate = Callable[[Event], Sequence[n.Neutral]]

SYSTEMS: dict[str, Callable[[], Translate]] = {
    "atomemo": atomemo_adapter.translator,
    "dify": DifyTranslator,
    "pipelit": PipelitTranslator,
    "odyssey": OdysseyTranslator,
}

# What the widget's header chip says; Atomemo, the home system, shows none.
LABELS = {"atomemo": "", "dify": "Dify", "pipelit": "Pipelit", "odyssey": "OdysseyAI"}


def system_label(name: str) -> str:
    """The system's name as people read it, or "" for the home system (no chip)."""
    return LABELS.get(name, name)


def translator_for(system: str | None) -> Translate:
    """A fresh translator for `system` (default Atomemo: logs written before systems had names)."""
    name = system or "atomemo"
    if name not in SYSTEMS:
        raise ValueError(f"no adapter for system {name!r}; known: {', '.join(SYSTEMS)}")
    return SYSTEMS[name]()


def event_for(system: str | None, name: str, data: Any) -> Event:
    """A saved event as its system's parser would have made it."""
    if (system or "atomemo") == "atomemo":
        return event_from_wire(name, data)
    return Event(name, data if isinstance(data, dict) else None)
