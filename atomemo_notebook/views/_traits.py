"""The anywidget plumbing the package's widgets share: where the built front end lives, synced
traits declared from `widget_protocol`'s tables, and a state sync that skips ipywidgets' search
for binary buffers in traits that never hold bytes."""

from __future__ import annotations

import pathlib
from typing import Any, ClassVar

import anywidget
import traitlets

from ._widget_protocol import PROTOCOL_VERSION, TRAITS

STATIC = pathlib.Path(__file__).parents[1] / "static"  # the bundle, built into the package root


class Shaped(traitlets.Dict):
    """A Dict trait that names its shape (a TypedDict of `widget_protocol`) and refuses unknown keys."""

    def __init__(self, shape: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shape = shape
        self.keys = set(getattr(shape, "__annotations__", {}))

    def validate(self, obj: Any, value: Any) -> Any:
        value = super().validate(obj, value)
        if self.keys and not set(value) <= self.keys:
            raise traitlets.TraitError(f"{self.name}: unknown keys {sorted(set(value) - self.keys)} "
                                       f"for {self.shape.__name__}")
        return value


def trait(name: str, help: str, traits: dict[str, Any] = TRAITS) -> Any:
    """The synced trait `name`, shaped as `widget_protocol.TRAITS` (or another table) declares it."""
    shape = traits[name]
    declared: Any
    if shape is int:
        declared = traitlets.Int(PROTOCOL_VERSION, help=help)
    elif shape is str:
        declared = traitlets.Unicode("", help=help)
    elif shape is bool:
        declared = traitlets.Bool(False, help=help)
    elif getattr(shape, "__origin__", None) is list:
        declared = traitlets.List(help=help)
    else:
        declared = Shaped(shape, help=help)
    return declared.tag(sync=True)


class PlainStateWidget(anywidget.AnyWidget):
    """An AnyWidget whose `_plain_state` traits are sent without ipywidgets' buffer search."""

    # Traits built from strings and numbers only, never bytes (a subclass names its own).
    _plain_state: ClassVar[frozenset[str]] = frozenset()

    def send_state(self, key: Any = None) -> None:
        """The plain traits' updates skip ipywidgets' search for binary buffers, which walked
        each nested dict and list of the window's twenty turns and timelines on every settle.
        The message is the one ipywidgets sends for a state without buffers; any other trait
        goes through ipywidgets as it is."""
        names = {key} if isinstance(key, str) else set(key) if key is not None else None
        if names is None or not names <= self._plain_state:
            super().send_state(key)
            return
        state = self.get_state(key=key)
        if not state:
            return
        if self._property_lock:  # as ipywidgets: keep the echo guard up to date with what is sent
            for name, value in state.items():
                if name in self._property_lock:
                    self._property_lock[name] = value
        self._send({"method": "update", "state": state, "buffer_paths": []}, buffers=[])
