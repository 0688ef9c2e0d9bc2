"""ChatWidget: the conversation model rendered in the notebook by an anywidget front end
(js/src). Python owns the client and the key; the browser only sees view state.

The protocol is declared once, in `widget_protocol`. Streaming text travels as coalesced `live`
messages (`live`); the settled conversation lives in bounded traits (a window of the shown path,
answers cut), so a reloaded page or a second view recovers it and the browser asks for the rest
by command (`commands`). The work runs on a background loop (`orchestration`); a saved notebook
keeps a static copy of the conversation (`fallback`). This class is the Python API: what the UI
does, and the conversation itself as `.chat`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import sys
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..model.chat import LEAF, AsyncChat, Chat
from ..protocol._wire import FileRef
from ..session import _runtime as runtime
from ..session._connect import as_async, connect
from ._commands import CHAT_COMMANDS
from ._fallback import StaticFallback
from ._orchestration import Orchestrator
from ._traits import STATIC, PlainStateWidget, trait
from ._view_state import ANSWER_CAP, WINDOW

if TYPE_CHECKING:
    from IPython.display import HTML

    from ..model.reply import Reply

SETTLE_WAIT = 10.0  # seconds an ask waits for the view of a whole answer to settle
CLOSE_WAIT = 10.0  # seconds close() waits for the chat (and its WebSocket) to close


def _on_loop() -> bool:
    """Called on the widget's own background loop: waiting there for that loop would deadlock."""
    try:
        return asyncio.get_running_loop() is runtime.loop()
    except RuntimeError:
        return False


class ChatWidget(PlainStateWidget):
    """Chat with an Atomemo workflow inside the notebook: streaming answers, a live execution
    timeline, the message tree with branches, and a raw event inspector.

    With no arguments and no ATOMEMO_API_KEY it starts the embedded demo server (offline).
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"
    _plain_state = frozenset({"transcript", "timelines", "live"})  # built by view_state: no bytes
    _commands = CHAT_COMMANDS

    protocol = trait("protocol", "The widget protocol's version (a saved state says what drew it).")
    header = trait("header", "App name/version/emoji, offline flag, demo apps, variables, inputs.")
    transcript = trait("transcript", "The newest settled turns of the shown path (a window).")
    timelines = trait("timelines", "message id -> execution timeline, for the turns in the window.")
    live = trait("live", "The reply streaming now ({key, query, parent_id, ...}), or {} when idle.")
    notice = trait("notice", "The last error shown in the chat: {code, message, draft}, or {}.")
    conversations = trait("conversations", "Past conversations of this user and app, newest first.")
    attachment = trait("attachment", "The file attached to the next message, or {}.")
    focus_id = trait("focus_id", "Compact views (the cell magic) show only this message ('' = all).")
    compact = trait("compact", "Hide the header and side panel (used by %%atomemo).")

    def __init__(
        self,
        app_id: str | AsyncChat | Any | None = None,
        trigger_id: str | None = None,
        user_id: str | None = None,
        *,
        system: str = "atomemo",
        api_key: str | None = None,
        base_url: str | None = None,
        inputs: dict[str, Any] | None = None,
        conversation_id: str | None = None,
        demo: str | None = None,
        offline: bool | None = None,
        workflow: str | None = None,
        workspace_id: str | None = None,
        agent_id: str | None = None,
        app_type: str | None = None,
        compact: bool = False,
        chat: AsyncChat | Any | None = None,
        **kwargs: Any,
    ) -> None:
        """`ChatWidget()` is the offline demo when nothing points at a server; `ChatWidget(demo=...)`
        (or `offline=True`) is the demo whatever the environment says; `ChatWidget(system="dify", ...)`
        names a system (keys and ids as `connect()` takes them); `ChatWidget(chat)` shows a chat
        built any way."""
        # The chat first: a mistake in the arguments raises before any widget (comm) exists.
        if isinstance(app_id, AsyncChat | Chat):
            chat, app_id = app_id, None
        # The widget's own traits (layout, ...) go to the widget; any other keyword is the chat's:
        # another setting of the system (Dify's web_app_code) or a client option (timeout, ...).
        traits = set(type(self).class_trait_names())
        settings = {name: kwargs.pop(name) for name in list(kwargs) if name not in traits}
        if chat is not None:
            if settings:
                raise TypeError(f"{', '.join(sorted(settings))}: settings of a chat ChatWidget builds; "
                                "the chat given is already built")
            # Another view of an existing conversation (the cell magic too): the same chat.
            own = as_async(chat)
            shared, owns = True, own is not chat  # the async twin of a sync chat is ours
        else:
            own = connect(system, api_key=api_key, base_url=base_url, user_id=user_id, app_id=app_id,
                          trigger_id=trigger_id, demo=demo, offline=offline, workflow=workflow,
                          workspace_id=workspace_id, agent_id=agent_id, app_type=app_type,
                          conversation_id=conversation_id, inputs=inputs, source="notebook", asynchronous=True,
                          **settings)
            shared, owns = False, True
        try:
            super().__init__(compact=compact, transcript={"leaf_id": "", "turns": [], "older": 0}, **kwargs)
        except BaseException:
            if owns:
                runtime.submit(own.close())
            raise
        self._fallback = StaticFallback(f"atomemo-notebook-{self.model_id}", self._fallback_html)
        self._orchestrator = Orchestrator(self, own, shared=shared, owns_chat=owns)
        self.on_msg(self._on_custom)
        self._booted = runtime.submit(self._orchestrator.boot(conversation_id is not None or bool(own.tree)))

    def __repr__(self) -> str:
        run = self._orchestrator
        mode = f"{run.system}, offline demo" if run.offline else f"{run.system} API"
        return f"ChatWidget({mode}, app={self.header.get('app_name')!r}, messages={len(run.chat.tree)})"

    def close(self) -> None:
        """Close the view; a chat it built (or the async twin of yours) is closed with it, so
        its connection and any WebSocket go too."""
        # A widget whose arguments were refused has no chat (ipywidgets closes it again at
        # garbage collection): there is nothing of ours to close.
        run = self.__dict__.get("_orchestrator")
        if run is not None and run.owns_chat and not run.chat.closed:
            closing = runtime.submit(run.chat.close())
            # Closed when close() returns (its WebSocket thread ended), within a deadline; never
            # waited for on the widget's own loop, by the garbage collector (__del__), or while the
            # interpreter exits (the loop's daemon thread no longer runs: each wait would be whole).
            if self._wait_on_close and not _on_loop() and not sys.is_finalizing():
                with contextlib.suppress(Exception):
                    closing.result(CLOSE_WAIT)
        super().close()

    _wait_on_close = True

    def __del__(self) -> None:
        self._wait_on_close = False  # a finalizer must never block
        super().__del__()

    # -- the Python API, mirroring the UI -------------------------------------------------
    @property
    def chat(self) -> AsyncChat:
        """The AsyncChat shown (it runs on the widget's background loop; a new or reopened
        conversation is another chat): its records, DataFrames, compare() and save_events()."""
        return self._orchestrator.chat

    @property
    def booted(self) -> Future[None]:
        """Done once the app's details and the conversation list are loaded."""
        return self._booted

    def ask(self, text: str | FileRef, *, parent_id: Any = LEAF) -> Reply:
        """Send a question, shown in the widget as if typed; returns the Reply at once while it
        streams (reply.wait() to block). `widget.ask(q).wait()` in a loop is fine: an answer
        that is whole but whose view is still settling (a few milliseconds) is waited for, not
        refused as still streaming."""
        running, own = self._orchestrator.running, self._orchestrator.own
        if running is not None and not running.done() and own is not None and own.done:
            with contextlib.suppress(Exception):
                running.result(SETTLE_WAIT)
        started: Future[Reply] = Future()
        self._orchestrator.submit(text, parent_id, started)
        return started.result(timeout=60)

    def stop(self) -> None:
        """Stop the answer being streamed; its partial text is kept."""
        runtime.call_soon(self.chat.stop)

    def regenerate(self, message_id: str) -> Reply:
        """A new answer to a message's question, as its sibling."""
        parent_id, query = self.chat.branch_point(message_id)
        return self.ask(query, parent_id=parent_id)

    def edit(self, message_id: str, new_query: str) -> Reply:
        """Ask `new_query` in place of a message's question, as its sibling."""
        parent_id, _ = self.chat.branch_point(message_id)
        return self.ask(new_query, parent_id=parent_id)

    def replay(self, source: str | os.PathLike[str]) -> list[Reply]:
        """Show a saved event log (chat.save_events()) in this widget, folded with no server: its
        replies join the conversation shown, and the view opens the last one in time travel, at
        its start (▶ plays it). Returns the replies, as `replay()` does."""
        from ..model._replay import replay

        if self._orchestrator.running is not None and not self._orchestrator.running.done():
            raise RuntimeError("an answer is still streaming: stop it first")
        replies = [r for r in replay(pathlib.Path(source)) if r.message_id]
        if not replies:
            raise ValueError(f"{source}: no reply with a message id to show")

        def show() -> None:
            chat = self.chat
            for reply in replies:
                chat.tree.add_reply(reply, source="replay")
                chat.replies.append(reply)
            chat.leaf_id = replies[-1].message_id
            self._orchestrator.settle()
            self.header = {**self.header, "travel": replies[-1].message_id}

        runtime.submit(_call(show)).result(30)
        return replies

    def wait(self, timeout: float | None = 120) -> None:
        """Block until the current answer (if any) has finished and the view state is settled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for part in ("running", "listing"):  # the answer, then the list it may refresh (read once it ends)
            work = getattr(self._orchestrator, part)
            if work is not None:
                with contextlib.suppress(Exception):
                    work.result(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def new_conversation(self) -> None:
        """A new conversation; on a system with only one (Pipelit), its history is cleared."""
        runtime.submit(self._orchestrator.fresh_start()).result(30)

    def open_conversation(self, conversation_id: str) -> None:
        """Show a past conversation (one of `conversations`), its history loaded."""
        runtime.submit(self._orchestrator.switch(conversation_id)).result(30)

    def attach(self, path_or_bytes: str | os.PathLike[str] | bytes, *, filename: str | None = None,
               mime_type: str | None = None) -> FileRef:
        """Upload a file (in the kernel, with the key) and attach it to the next message."""
        return runtime.submit(self._orchestrator.attach(path_or_bytes, filename, mime_type)).result(120)

    # -- what it shows, as static HTML ----------------------------------------------------
    def snapshot(self, turns: int | None = WINDOW) -> HTML:
        """The shown conversation's newest `turns` turns (what the widget shows at first) and
        their timelines as sanitized static HTML: what a saved notebook shows without a kernel.
        A turn still streaming is marked as such. Its cost follows the turns shown, not the
        conversation's length; `turns=None` shows them all, as export_html() saves them."""
        from IPython.display import HTML

        if turns is not None and turns < 1:
            raise ValueError(f"turns must be >= 1 or None, got {turns!r}")
        return HTML(self._snapshot_html(limit=turns))  # type: ignore[no-untyped-call]

    def export_html(self, path: str | os.PathLike[str], interactive: bool = False, *,
                    max_chars: int | None = None) -> pathlib.Path:
        """Save the conversation as one HTML file. By default the static copy (what a saved
        notebook shows, no script at all); `interactive=True`: the widget itself, read-only,
        with its timeline, graph, events, compare and time travel working from disk with no
        Python and no network (_export.py; at most `max_chars` characters of data, the newest
        turns kept whole). Written all or nothing; never holds the key."""
        from ..protocol._files import write_atomic

        if interactive:
            from ._export import EXPORT_CHARS, write_interactive

            return write_interactive(path, self.chat.tree, self.chat.leaf_id, dict(self.header),
                                     max_chars=EXPORT_CHARS if max_chars is None else max_chars)[0]
        from ._snapshot import page

        return write_atomic(path, page(self._snapshot_html(), self.header))

    def _snapshot_html(self, *, with_live: bool = True, **bounds: Any) -> str:
        from ._snapshot import snapshot_html

        pump = self._orchestrator.pump
        live = pump.reply if pump is not None and with_live else None
        return snapshot_html(self.header, self.chat.tree, self.chat.leaf_id, live=live, **bounds)

    def _fallback_html(self) -> str:
        return self._snapshot_html(with_live=False, limit=WINDOW, cap=ANSWER_CAP)  # settled turns only

    def _ipython_display_(self) -> None:
        """The widget view, and after it the conversation as static HTML (`fallback`)."""
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if bundle is None:
            return
        display(bundle[0], metadata=bundle[1], raw=True)  # type: ignore[no-untyped-call]
        self._fallback.show()

    def _on_custom(self, _: Any, content: Any, buffers: list[bytes] | None = None) -> None:
        self._commands.dispatch(self, content, buffers or [])


async def _call(fn: Any) -> None:
    """Run `fn` on the widget's loop, where the chat's tree changes."""
    fn()
