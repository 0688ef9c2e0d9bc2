"""ChatWidget: the conversation model rendered in the notebook by an anywidget front end
(js/src). Python owns the client and the key; the browser only sees view state.

The protocol is declared once, in `widget_protocol`. Streaming text travels as coalesced `live`
messages (`live`); the settled conversation lives in bounded traits (a window of the shown path,
answers cut), so a reloaded page or a second view recovers it and the browser asks for the rest
by command (`commands`). The work runs on a background loop (`orchestration`); the conversation
as static HTML (`static`) is kept after the view in a saved notebook (`fallback`). This class is
the Python API: what the UI does, and the conversation itself as `.chat`."""

from __future__ import annotations

import os
import pathlib
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..model.chat import LEAF, AsyncChat, Chat
from ..protocol._wire import FileRef
from ..session import _runtime as runtime
from . import _static as static
from ._commands import CHAT_COMMANDS
from ._fallback import StaticFallback
from ._orchestration import Orchestrator, chat_for
from ._traits import STATIC, PlainStateWidget, trait
from ._view_state import WINDOW

if TYPE_CHECKING:
    from IPython.display import HTML

    from ..model.reply import Reply


class ChatWidget(PlainStateWidget):
    """Chat with an Atomemo workflow inside the notebook: streaming answers, a live execution
    timeline, the message tree with branches, and a raw event inspector.

    With no arguments and no ATOMEMO_API_KEY it starts the embedded demo server (offline).
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"
    _plain_state = frozenset({"transcript", "timelines", "live"})  # built by view_state: no bytes
    _commands = CHAT_COMMANDS
    _wait_on_close = True  # close() waits for the chat to close (not when called by __del__)

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
        # The widget's own traits (layout, ...) go to the widget; any other keyword is the chat's.
        traits = set(type(self).class_trait_names())
        settings = {name: kwargs.pop(name) for name in list(kwargs) if name not in traits}
        own, shared, owns = chat_for(system, chat, settings, api_key=api_key, base_url=base_url, user_id=user_id,
                                     app_id=app_id, trigger_id=trigger_id, demo=demo, offline=offline,
                                     workflow=workflow, workspace_id=workspace_id, agent_id=agent_id,
                                     app_type=app_type, conversation_id=conversation_id, inputs=inputs)
        try:
            super().__init__(compact=compact, transcript={"leaf_id": "", "turns": [], "older": 0}, **kwargs)
        except BaseException:
            if owns:
                runtime.submit(own.close())
            raise
        self._fallback = StaticFallback(f"atomemo-notebook-{self.model_id}", lambda: static.settled_html(self))
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
        run = self.__dict__.get("_orchestrator")  # none if the arguments were refused: nothing to close
        if run is not None:
            run.close(wait=self._wait_on_close)
        super().close()

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
        return self._orchestrator.ask(text, parent_id)

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
        return self._orchestrator.replay(source)

    def wait(self, timeout: float | None = 120) -> None:
        """Block until the current answer (if any) has finished and the view state is settled."""
        self._orchestrator.wait(timeout)

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
        return static.snapshot(self, turns)

    def export_html(self, path: str | os.PathLike[str], interactive: bool = False, *,
                    max_chars: int | None = None) -> pathlib.Path:
        """Save the conversation as one HTML file. By default the static copy (what a saved
        notebook shows, no script at all); `interactive=True`: the widget itself, read-only,
        with its timeline, graph, events, compare and time travel working from disk with no
        Python and no network (_export.py; at most `max_chars` characters of data, the newest
        turns kept whole). Written all or nothing; never holds the key."""
        return static.export_html(self, path, interactive, max_chars)

    def _ipython_display_(self) -> None:
        """The widget view, and after it the conversation as static HTML (`fallback`)."""
        static.display(self)

    def _on_custom(self, _: Any, content: Any, buffers: list[bytes] | None = None) -> None:
        self._commands.dispatch(self, content, buffers or [])

