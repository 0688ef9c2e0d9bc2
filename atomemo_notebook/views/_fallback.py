"""The static fallback: after the widget view, the conversation as static HTML in an output of
its own, what a notebook shows without a kernel (GitHub, nbconvert, a restarted kernel). It is
kept up to date after each settle and as each cell ends; the widget's stylesheet hides it
wherever the widget itself renders."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any

from ..session import _runtime as runtime

FALLBACK_DELAY = 1.0  # seconds after a settle before the static fallback output is refreshed


class StaticFallback:
    """One widget's static output, drawn from `html()` (the settled turns, as snapshot HTML)."""

    def __init__(self, display_id: str, html: Callable[[], str]) -> None:
        self.display_id = display_id
        self._html = html
        self.displayed = False
        self._due = False  # a refresh is scheduled
        self._stale = False  # the output is behind the conversation
        self._hooked = False

    def _bundle(self) -> dict[str, str]:
        return {"text/html": f'<div class="atomemo-fallback">{self._html()}</div>'}

    def show(self) -> None:
        """Display the output (right after the widget view, in an output of its own: in one
        bundle, nbconvert and hosts would always pick the widget view and drop it)."""
        from IPython.display import display

        display(self._bundle(), raw=True, display_id=self.display_id)  # type: ignore[no-untyped-call]
        self.displayed = True
        self._stale = False
        self._hook_cells()

    def _hook_cells(self) -> None:
        """Refresh the static output as each cell ends too: a cell that asks and waits leaves
        its notebook (and a headless run of it) with the conversation as it then stood."""
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with ipywidgets
            return
        shell = get_ipython()
        if shell is None or self._hooked:
            return
        ref = weakref.ref(self)

        def after_cell(*_: Any) -> None:
            fallback = ref()
            if fallback is None:
                with contextlib.suppress(ValueError):
                    shell.events.unregister("post_execute", after_cell)
            elif fallback._stale:
                fallback.update()

        shell.events.register("post_execute", after_cell)
        self._hooked = True

    def update(self) -> None:
        from IPython.display import update_display

        self._stale = False
        with contextlib.suppress(Exception):  # no kernel display machinery: nothing to update
            update_display(self._bundle(), raw=True, display_id=self.display_id)  # type: ignore[no-untyped-call]

    def refresh(self) -> None:
        """Bring the output up to date after a settle (at most once a second); only that output
        is redrawn, never the live view."""
        if not self.displayed:
            return
        self._stale = True
        if self._due:
            return
        self._due = True

        def update() -> None:
            self._due = False
            if self._stale:
                self.update()

        runtime.loop().call_later(FALLBACK_DELAY, update)
