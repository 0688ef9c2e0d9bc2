"""`%load_ext atomemo_notebook`, then `%%atomemo`: the cell's text is the question; the answer
streams into the cell's output. Successive cells continue one conversation.

    %%atomemo [--demo SLUG] [--new]

In a Jupyter kernel each cell shows a compact ChatWidget (its question, answer and timeline);
elsewhere (terminal IPython) the answer streams as plain text."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class

from ..model.chat import AsyncChat
from ..model.reply import Reply
from ..protocol._wire import Event
from ..session import _runtime as runtime
from ._widget import ChatWidget

_parser = argparse.ArgumentParser(prog="%%atomemo", add_help=False)
_parser.add_argument("--demo", default=None, help="demo app slug (offline server)")
_parser.add_argument("--new", action="store_true", help="start a new conversation")


def _has_widget_frontend(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


@magics_class
class AtomemoMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._main: ChatWidget | None = None
        self._demo: str | None = None

    def _conversation(self, demo: str | None, new: bool) -> AsyncChat:
        if self._main is None or (demo is not None and demo != self._demo):
            self._main = ChatWidget(demo=demo)  # no --demo: the environment decides, as ChatWidget() does
            self._demo = demo
        elif new:
            self._main.new_conversation()
        self._main.booted.result(30)
        return self._main.chat

    @cell_magic
    def atomemo(self, line: str, cell: str) -> Any:
        try:
            args = _parser.parse_args(shlex.split(line))
        except SystemExit:
            raise ValueError(f"usage: %%atomemo [--demo SLUG] [--new]; got {line!r}") from None
        text = cell.strip()
        if not text:
            raise ValueError("%%atomemo needs the question in the cell's body")
        chat = self._conversation(args.demo, args.new)
        if _has_widget_frontend(self.shell):
            view = ChatWidget(chat=chat, compact=True)
            from IPython.display import display

            display(view)  # type: ignore[no-untyped-call]
            view.ask(text)
            return None
        return _stream_as_text(chat, text)


def _stream_as_text(chat: AsyncChat, text: str) -> Reply:
    written = 0

    def echo(reply: Reply, event: Event) -> None:
        nonlocal written
        new = reply.text
        if len(new) > written:
            sys.stdout.write(new[written:])
            sys.stdout.flush()
            written = len(new)

    reply = runtime.submit(chat.ask(text, on_event=echo)).result()
    sys.stdout.write(f"\n[{reply.status} · {len(reply.nodes)} nodes · {reply.total_time or 0:.2f} s]\n")
    return reply


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(AtomemoMagics)
