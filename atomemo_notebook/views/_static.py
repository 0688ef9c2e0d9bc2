"""A widget's conversation as static HTML: the snapshot asked for, the fallback output a saved
notebook keeps (`fallback`), and the file export_html() writes. Each reads the chat shown and the
widget's header; none holds the key."""

from __future__ import annotations

import os
import pathlib
from typing import TYPE_CHECKING, Any

from ..protocol._files import write_atomic
from ._view_state import ANSWER_CAP, WINDOW

if TYPE_CHECKING:
    from IPython.display import HTML

    from ._widget import ChatWidget


def conversation_html(widget: ChatWidget, *, with_live: bool = True, **bounds: Any) -> str:
    """The shown path's turns (`bounds`: snapshot_html's limit and cap), a turn still streaming
    marked as such unless `with_live` is False."""
    from ._snapshot import snapshot_html  # markdown-it and nh3 load on the first static view, not at import

    pump = widget._orchestrator.pump
    live = pump.reply if pump is not None and with_live else None
    return snapshot_html(widget.header, widget.chat.tree, widget.chat.leaf_id, live=live, **bounds)


def settled_html(widget: ChatWidget) -> str:
    """The fallback output's content: the settled turns only, as many and as cut as the window."""
    return conversation_html(widget, with_live=False, limit=WINDOW, cap=ANSWER_CAP)


def snapshot(widget: ChatWidget, turns: int | None) -> HTML:
    from IPython.display import HTML

    if turns is not None and turns < 1:
        raise ValueError(f"turns must be >= 1 or None, got {turns!r}")
    return HTML(conversation_html(widget, limit=turns))  # type: ignore[no-untyped-call]


def export_html(widget: ChatWidget, path: str | os.PathLike[str], interactive: bool,
                max_chars: int | None) -> pathlib.Path:
    if interactive:
        from ._export import EXPORT_CHARS, write_interactive

        return write_interactive(path, widget.chat.tree, widget.chat.leaf_id, dict(widget.header),
                                 max_chars=EXPORT_CHARS if max_chars is None else max_chars)[0]
    from ._snapshot import page

    return write_atomic(path, page(conversation_html(widget), widget.header))


def display(widget: ChatWidget) -> None:
    """The widget view, and after it the conversation as static HTML (`fallback`)."""
    from IPython.display import display

    bundle = widget._repr_mimebundle_()
    if bundle is None:
        return
    display(bundle[0], metadata=bundle[1], raw=True)  # type: ignore[no-untyped-call]
    widget._fallback.show()
