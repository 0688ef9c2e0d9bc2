"""ChatWidget: the conversation model rendered in the notebook by an anywidget front end
(js/src). Python owns the client and the key; the browser only sees view state.

The protocol is declared once, in `widget_protocol`. Streaming text travels as coalesced `live`
messages sent from the loop that owns the reply (at most ~30 per second, none while nothing
changes); the settled conversation lives in bounded traits (a window of the shown path,
answers cut), so a reloaded page or a second view recovers it and the browser asks for
the rest by command."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pathlib
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import anywidget
import traitlets

from ..model.chat import LEAF, AsyncChat, Chat
from ..model.compare import word_diff
from ..model.reply import Reply
from ..protocol.atomemo.events import Event
from ..protocol.atomemo.models import FileRef
from ..protocol.errors import AtomemoError
from ..protocol.systems import system_label
from . import runtime
from .connect import as_async, connect
from .graph import published_graph
from .view_state import (
    ANSWER_CAP,
    EVENTS_PAGE,
    WINDOW,
    WINDOW_MAX,
    TimelineCache,
    compare_view,
    error_view,
    events_page,
    live_view,
    node_detail,
    timeline_view,
    transcript_view,
    window_timelines,
)
from .widget_protocol import COMMANDS, PROTOCOL_VERSION, TRAITS, check

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML

STATIC = pathlib.Path(__file__).parents[1] / "static"  # the bundle, built into the package root
FLUSH_INTERVAL = 1 / 30  # seconds between live messages to the browser
DEFAULT_USER = "notebook-user"
CONVERSATIONS_SHOWN = 100
FALLBACK_DELAY = 1.0  # seconds after a settle before the static fallback output is refreshed
SETTLE_WAIT = 10.0  # seconds an ask waits for the view of a whole answer to settle
VIEW_STATE = frozenset({"transcript", "timelines", "live"})  # traits of JSON text and numbers only
# Commands whose failure is shown in the chat (with the typed text kept), not only answered.
USER_FACING = frozenset({"send", "regenerate", "edit", "open_conversation", "new_conversation",
                         "pick_demo", "set_inputs", "attach"})

F = TypeVar("F", bound=Callable[..., Any])
_HANDLERS: dict[str, Callable[..., Any]] = {}


def _command(name: str) -> Callable[[F], F]:
    """Register a method as the handler of a browser command declared in `widget_protocol.COMMANDS`."""
    if name not in COMMANDS:
        raise KeyError(f"command {name!r} is not declared in widget_protocol.COMMANDS")

    def register(method: F) -> F:
        _HANDLERS[name] = method
        return method

    return register


class _LivePump:
    """Sends one streaming reply to the browser from the loop that owns it: the first change
    after a quiet spell schedules one flush, at least FLUSH_INTERVAL after the previous one;
    nothing runs while nothing changes, and the end is flushed at once."""

    def __init__(self, widget: ChatWidget, reply: Reply, key: str) -> None:
        self.widget, self.reply, self.key = widget, reply, key
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.seq = 0
        self.sent = 0  # characters of reply.text already sent
        self.resets = 0  # reply.text_resets already passed on
        self.changes = -1  # reply.changes already passed on: anything but text redraws the timeline
        self.message_id: str | None = None
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        reply.on_update(self._on_event)

    def _on_event(self, reply: Reply, event: Event | None) -> None:
        final = event is None
        if threading.get_ident() != self.thread:  # applied elsewhere: hop onto the owning loop
            self.loop.call_soon_threadsafe(self._schedule, final)
        else:
            self._schedule(final)

    def _schedule(self, final: bool) -> None:
        if final:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush()
            if not self.done.done():
                self.done.set_result(None)
        elif self._timer is None:
            wait = max(0.0, self._last + FLUSH_INTERVAL - time.monotonic())
            self._timer = self.loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        self._timer = None
        self._last = time.monotonic()
        self.flush()

    def flush(self) -> None:
        text = self.reply.text
        msg: dict[str, Any] = {"type": "live", "key": self.key, "status": live_view(self.reply, "")["status"]}
        if self.reply.text_resets != self.resets:
            self.resets = self.reply.text_resets
            msg["reset"] = text  # the stored answer replaced the streamed one
        elif len(text) > self.sent:
            msg["append"] = text[self.sent:]
        self.sent = len(text)
        if self.reply.message_id != self.message_id:
            self.message_id = msg["message_id"] = self.reply.message_id
        if self.reply.changes != self.changes:
            self.changes = self.reply.changes
            msg["timeline"] = timeline_view(self.reply)
        if len(msg) > 3 or self.reply.done:
            self.seq += 1
            msg["seq"] = self.seq
            self.widget.send(msg)

    def snapshot(self) -> dict[str, Any]:
        return {"type": "live_snapshot", "key": self.key, "seq": self.seq,
                "text": self.reply.text[:self.sent], "message_id": self.message_id,
                "status": live_view(self.reply, "")["status"], "timeline": timeline_view(self.reply)}


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


def _trait(name: str, help: str, traits: dict[str, Any] = TRAITS) -> Any:
    """The synced trait `name`, shaped as `widget_protocol.TRAITS` (or another table) declares it."""
    shape = traits[name]
    trait: Any
    if shape is int:
        trait = traitlets.Int(PROTOCOL_VERSION, help=help)
    elif shape is str:
        trait = traitlets.Unicode("", help=help)
    elif shape is bool:
        trait = traitlets.Bool(False, help=help)
    elif getattr(shape, "__origin__", None) is list:
        trait = traitlets.List(help=help)
    else:
        trait = Shaped(shape, help=help)
    return trait.tag(sync=True)


class ChatWidget(anywidget.AnyWidget):
    """Chat with an Atomemo workflow inside the notebook: streaming answers, a live execution
    timeline, the message tree with branches, and a raw event inspector.

    With no arguments and no ATOMEMO_API_KEY it starts the embedded demo server (offline).
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    protocol = _trait("protocol", "The widget protocol's version (a saved state says what drew it).")
    header = _trait("header", "App name/version/emoji, offline flag, demo apps, variables, inputs.")
    transcript = _trait("transcript", "The newest settled turns of the shown path (a window).")
    timelines = _trait("timelines", "message id -> execution timeline, for the turns in the window.")
    live = _trait("live", "The reply streaming now ({key, query, parent_id, ...}), or {} when idle.")
    notice = _trait("notice", "The last error shown in the chat: {code, message, draft}, or {}.")
    conversations = _trait("conversations", "Past conversations of this user and app, newest first.")
    attachment = _trait("attachment", "The file attached to the next message, or {}.")
    focus_id = _trait("focus_id", "Compact views (the cell magic) show only this message ('' = all).")
    compact = _trait("compact", "Hide the header and side panel (used by %%atomemo).")

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
        if chat is not None:
            # Another view of an existing conversation (the cell magic too): the same chat.
            own = as_async(chat)
            shared, owns = True, own is not chat  # the async twin of a sync chat is ours
        else:
            own = connect(system, api_key=api_key, base_url=base_url, user_id=user_id, app_id=app_id,
                          trigger_id=trigger_id, demo=demo, offline=offline, workflow=workflow,
                          workspace_id=workspace_id, agent_id=agent_id, conversation_id=conversation_id,
                          inputs=inputs, source="notebook", asynchronous=True)
            shared, owns = False, True
        self._chat, self._shared, self._owns_chat = own, shared, owns
        try:
            super().__init__(compact=compact, transcript={"leaf_id": "", "turns": [], "older": 0}, **kwargs)
        except BaseException:
            if owns:
                runtime.submit(own.close())
            raise
        self._system = self._chat.system
        self._asking = False
        self._keys = itertools.count(1)
        self._pump: _LivePump | None = None
        self._running: Future[Any] | None = None
        self._file: FileRef | None = None
        self._own: Reply | None = None  # the last reply this view asked for
        self._window = WINDOW
        self._timelines: TimelineCache = {}  # the window's finished timelines, built once each
        self._displayed = False
        self._fallback_due = False
        self._fallback_stale = False
        self._hooked = False
        self._display_id = f"atomemo-notebook-{self.model_id}"
        self._chat.reply_listeners.append(self._on_reply_started)
        self.on_msg(self._on_custom)
        self._booted = runtime.submit(self._boot(conversation_id is not None or bool(self._chat.tree)))

    @property
    def _offline(self) -> bool:
        return bool(self._chat.origin.get("offline"))

    def __repr__(self) -> str:
        mode = f"{self._system}, offline demo" if self._offline else f"{self._system} API"
        return (f"ChatWidget({mode}, app={self.header.get('app_name')!r}, "
                f"messages={len(self._chat.tree)})")

    def close(self) -> None:
        """Close the view; a chat it built (or the async twin of yours) is closed with it, so
        its connection and any WebSocket go too."""
        # A widget whose arguments were refused has no chat (ipywidgets closes it again at
        # garbage collection): there is nothing of ours to close.
        if self.__dict__.get("_owns_chat") and not self._chat.closed:
            runtime.submit(self._chat.close())
        super().close()

    # -- the Python API, mirroring the UI -------------------------------------------------
    @property
    def conversation(self) -> AsyncChat:
        """The AsyncChat behind the widget (it runs on the widget's background loop)."""
        return self._chat

    @property
    def booted(self) -> Future[None]:
        """Done once the app's details and the conversation list are loaded."""
        return self._booted

    def ask(self, text: str | FileRef, *, parent_id: Any = LEAF) -> Reply:
        """Send a question; returns the Reply at once while it streams (reply.wait() to block).
        `widget.ask(q).wait()` in a loop is fine: an answer that is whole but whose view is still
        settling (a few milliseconds) is waited for, not refused as still streaming."""
        running, own = self._running, self._own
        if running is not None and not running.done() and own is not None and own.done:
            with contextlib.suppress(Exception):
                running.result(SETTLE_WAIT)
        started: Future[Reply] = Future()
        self._submit(text, parent_id, started)
        return started.result(timeout=60)

    def stop(self) -> None:
        """Stop the answer being streamed; its partial text is kept."""
        runtime.call_soon(self._chat.stop)

    def regenerate(self, message_id: str) -> Reply:
        """A new answer to a message's question, as its sibling."""
        parent_id, query = self._chat.branch_point(message_id)
        return self.ask(query, parent_id=parent_id)

    def edit(self, message_id: str, new_query: str) -> Reply:
        """Ask `new_query` in place of a message's question, as its sibling."""
        parent_id, _ = self._chat.branch_point(message_id)
        return self.ask(new_query, parent_id=parent_id)

    def wait(self, timeout: float | None = 120) -> None:
        """Block until the current answer (if any) has finished and the view state is settled."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                self._running.result(timeout)

    def new_conversation(self) -> None:
        """A new conversation; on a system with only one (Pipelit), its history is cleared."""
        runtime.submit(self._fresh_start()).result(30)

    def open_conversation(self, conversation_id: str) -> None:
        runtime.submit(self._switch(conversation_id)).result(30)

    def attach(self, path_or_bytes: str | os.PathLike[str] | bytes, *, filename: str | None = None,
               mime_type: str | None = None) -> FileRef:
        """Upload a file (in the kernel, with the key) and attach it to the next message."""
        return runtime.submit(self._attach(path_or_bytes, filename, mime_type)).result(120)

    def history_records(self) -> list[dict[str, Any]]:
        return self._chat.history_records()

    def timeline_records(self) -> list[dict[str, Any]]:
        return self._chat.timeline_records()

    def event_records(self) -> list[dict[str, Any]]:
        return self._chat.event_records()

    def source_records(self) -> list[dict[str, Any]]:
        return self._chat.source_records()

    def compare(self, a: str, b: str) -> pd.DataFrame:
        """Two replies side by side (by message id): what the Compare tab shows, as a DataFrame."""
        return self._chat.compare(a, b)

    def history_df(self) -> pd.DataFrame:
        return self._chat.history_df()

    def timeline_df(self) -> pd.DataFrame:
        return self._chat.timeline_df()

    def events_df(self) -> pd.DataFrame:
        return self._chat.events_df()

    def sources_df(self) -> pd.DataFrame:
        return self._chat.sources_df()

    def save_events(self, path: str | os.PathLike[str]) -> pathlib.Path:
        return self._chat.save_events(pathlib.Path(path))

    def snapshot(self, turns: int | None = WINDOW) -> HTML:
        """The shown conversation's newest `turns` turns (what the widget shows at first) and
        their timelines as sanitized static HTML: what a saved notebook shows without a kernel.
        A turn still streaming is marked as such. Its cost follows the turns shown, not the
        conversation's length; `turns=None` shows them all, as export_html() saves them."""
        from IPython.display import HTML

        if turns is not None and turns < 1:
            raise ValueError(f"turns must be >= 1 or None, got {turns!r}")
        return HTML(self._snapshot_html(limit=turns))  # type: ignore[no-untyped-call]

    def export_html(self, path: str | os.PathLike[str]) -> pathlib.Path:
        from .snapshot import page

        target = pathlib.Path(path)
        target.write_text(page(self._snapshot_html(), self.header), encoding="utf-8")
        return target

    def _snapshot_html(self, *, with_live: bool = True, **bounds: Any) -> str:
        from .snapshot import snapshot_html

        live = self._pump.reply if self._pump is not None and with_live else None
        return snapshot_html(self.header, self._chat.tree, self._chat.leaf_id, live=live, **bounds)

    # -- the static fallback next to the live view ------------------------------------------
    def _fallback_html(self) -> str:
        # The widget's stylesheet hides this output wherever the widget itself renders.
        body = self._snapshot_html(with_live=False, limit=WINDOW, cap=ANSWER_CAP)  # settled turns only
        return f'<div class="atomemo-fallback">{body}</div>'

    def _ipython_display_(self) -> None:
        """The widget view, and after it the conversation as static HTML in an output of its
        own: what a notebook shows without a kernel (GitHub, nbconvert, a restarted kernel).
        (In one bundle, nbconvert and hosts would always pick the widget view and drop it.)"""
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if bundle is None:
            return
        display(bundle[0], metadata=bundle[1], raw=True)  # type: ignore[no-untyped-call]
        display({"text/html": self._fallback_html()}, raw=True,  # type: ignore[no-untyped-call]
                display_id=self._display_id)
        self._displayed = True
        self._fallback_stale = False
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
            widget = ref()
            if widget is None:
                with contextlib.suppress(ValueError):
                    shell.events.unregister("post_execute", after_cell)
            elif widget._fallback_stale:
                widget._update_fallback()

        shell.events.register("post_execute", after_cell)
        self._hooked = True

    def _update_fallback(self) -> None:
        from IPython.display import update_display

        self._fallback_stale = False
        with contextlib.suppress(Exception):  # no kernel display machinery: nothing to update
            update_display({"text/html": self._fallback_html()}, raw=True,  # type: ignore[no-untyped-call]
                           display_id=self._display_id)

    def _refresh_fallback(self) -> None:
        """Bring the static output up to date after a settle (at most once a second); only that
        output is redrawn, never the live view."""
        if not self._displayed:
            return
        self._fallback_stale = True
        if self._fallback_due:
            return
        self._fallback_due = True

        def update() -> None:
            self._fallback_due = False
            if self._fallback_stale:
                self._update_fallback()

        runtime.loop().call_later(FALLBACK_DELAY, update)

    # -- running on the background loop ---------------------------------------------------
    def _submit(self, query: str | FileRef, parent_id: Any, started: Future[Reply] | None = None) -> None:
        """Start one answer on the background loop; one at a time per widget."""
        if self._running is not None and not self._running.done():
            raise RuntimeError("an answer is still streaming: stop it first")
        self._running = runtime.submit(self._ask(query, parent_id, started))

    def _on_reply_started(self, reply: Reply) -> None:
        if (self.compact or self._shared) and not self._asking:
            return  # a view of a shared chat follows only the replies it asked for
        key = f"r{next(self._keys)}"
        self._pump = _LivePump(self, reply, key)
        self.live = live_view(reply, key)
        self.notice = {}

    async def _boot(self, load_history: bool) -> None:
        app = await self._chat.load_app()
        demo_apps = runtime.demo_server().apps.values() if self._offline else ()
        caps = self._chat.capabilities
        self.header = {
            "app_name": app.name if app else (self._chat.app_id or self._system),
            "app_version": app.version if app else "",
            "app_emoji": app.emoji if app else "",
            "app_color": app.color if app else None,
            "description": (app.opening or app.description) if app else None,
            "system": self._system,
            "system_label": system_label(self._system),
            "offline": self._offline,
            "demo_apps": [{"slug": d["slug"], "name": d["name"]} for d in demo_apps],
            "demo": self._chat.origin.get("demo") if self._offline else None,
            "user_id": self._chat.user_id,
            "variables": list(app.variables) if app else [],
            "inputs": dict(self._chat.inputs),
            "examples": list(app.examples) if app else [],
            "graph": published_graph(app),
            "capabilities": {"token_streaming": caps.token_streaming, "stop": caps.stop,
                             "branching": caps.branching, "files": caps.files,
                             "conversations": caps.conversations, "new_conversation": caps.new_conversation,
                             **({"regenerate_reason": caps.branching_reason}
                                if caps.branching_reason else {}),
                             **({"stop_note": caps.stop_note} if caps.stop_note else {})},
        }
        if load_history:
            with contextlib.suppress(AtomemoError):
                await self._chat.history()
        await self._refresh_conversations()
        self._settle()
        self._follow_running()

    async def _refresh_conversations(self) -> None:
        try:
            items = await self._chat.conversations()
        except AtomemoError:
            return
        self.conversations = [{"id": c.id, "name": c.name[:200],
                               "updated_at": c.updated_at.isoformat() if c.updated_at else None}
                              for c in items[:CONVERSATIONS_SHOWN]]

    async def _ask(self, text: str | FileRef, parent_id: Any, started: Future[Reply] | None) -> None:
        with contextlib.suppress(Exception):  # a failed boot (no app info) must not block asking
            await asyncio.wrap_future(self._booted)
        draft = text if isinstance(text, str) else ""
        # An attached file and a typed question go together: the file's message first, then
        # the question continuing from it (a message of this API is text or a file, not both).
        queries: list[str | FileRef] = []
        if self._file is not None:
            queries.append(self._file)
            self._file = None
            self.attachment = {}
        if not isinstance(text, str) or text.strip():
            queries.append(text)
        new_conversation = self._chat.conversation_id is None

        def on_start(reply: Reply) -> None:
            self._own = reply
            if started is not None and not started.done():
                started.set_result(reply)

        self._chat.reply_listeners.append(on_start)
        try:
            for index, query in enumerate(queries):
                if not await self._ask_one(query, parent_id if index == 0 else LEAF, draft, started):
                    break
        finally:
            self._chat.reply_listeners.remove(on_start)
        if new_conversation:
            await self._refresh_conversations()

    async def _ask_one(self, query: str | FileRef, parent_id: Any, draft: str,
                       started: Future[Reply] | None) -> bool:
        """One question, streamed and settled; False when it could not be asked."""
        self._asking = True
        try:
            reply = await self._chat.ask(query, parent_id=parent_id)
        except (AtomemoError, ValueError, TypeError) as exc:
            self.notice = {**(error_view(exc) or {}), "draft": draft}
            if started is not None and not started.done():
                started.set_exception(exc)
            return False
        finally:
            self._asking = False
            if self._pump is not None:
                await self._pump.done
                self._pump = None
            self._settle()
        if reply.status == "stopped":
            self._follow_running([reply.message_id])
        return reply.status not in ("failed", "stopped")

    def _follow_running(self, message_ids: list[str | None] | None = None) -> None:
        """Messages the server is still answering (reopened mid-run, or stopped by us): follow
        each quietly to its end, then show how it really ended."""
        chat = self._chat
        shown = message_ids if message_ids is not None else [t["id"] for t in self.transcript["turns"]]
        running = chat.running_on_server(set(shown))
        if running:
            runtime.submit(self._follow(chat, running))

    async def _follow(self, chat: AsyncChat, message_ids: list[str]) -> None:
        for message_id in message_ids:
            with contextlib.suppress(AtomemoError):
                await chat.follow(message_id)
        if chat is self._chat and (self._running is None or self._running.done()):
            self._settle()

    def _settle(self) -> None:
        """Put the settled conversation into the traits: a bounded window, one update."""
        transcript = transcript_view(self._chat.tree, self._chat.leaf_id, self._window)
        # hold_sync: the transcript and the cleared live turn reach the browser as one message.
        with self.hold_sync():
            self.transcript = transcript
            self.timelines = window_timelines(self._chat.tree, transcript, self._timelines)
            if self.compact and self._own is not None and self._own.message_id:
                self.focus_id = self._own.message_id
            self.header = {**self.header, "conversation_id": self._chat.conversation_id,
                           "inputs": dict(self._chat.inputs)}
            self.live = {}
        self._refresh_fallback()

    async def _switch(self, conversation_id: str | None, chat: AsyncChat | None = None) -> None:
        old = self._chat
        old.stop()
        self._chat = chat or old.fresh(conversation_id)
        if chat is None:
            if self._owns_chat:  # the same backend: the new chat takes over closing what the old one owned
                self._chat.owns_client, old.owns_client = old.owns_client, False
        elif self._owns_chat:
            await old.close()  # another demo app: its client (and any WebSocket) goes
        self._owns_chat = self._owns_chat or chat is not None
        self._chat.reply_listeners.append(self._on_reply_started)
        self._window = WINDOW
        self._timelines.clear()
        await self._chat.load_app()
        if conversation_id is not None:
            await self._chat.history()
        self.notice = {}
        self._settle()
        self._follow_running()
        await self._refresh_conversations()

    async def _fresh_start(self) -> None:
        if self._chat.capabilities.new_conversation == "clear":
            self._chat.stop()
            await self._chat.clear()
            self.notice = {}
            self._settle()
            return
        await self._switch(None)

    async def _pick_demo(self, slug: str) -> None:
        if not self._offline:
            raise ValueError("demo apps exist only with the offline demo server")
        chat = connect(self._system, demo=slug, user_id=self._chat.user_id, source="notebook",
                       asynchronous=True)
        await self._switch(None, chat)
        await self._boot(False)

    async def _attach(self, source: str | os.PathLike[str] | bytes, filename: str | None,
                      mime_type: str | None) -> FileRef:
        ref = await self._chat.backend.upload(source, filename=filename, mime_type=mime_type,
                                              user=self._chat.user_id)
        self._file = ref
        self.attachment = {"filename": ref.filename, "size": ref.size, "mime_type": ref.mime_type}
        return ref

    # -- state to the browser ---------------------------------------------------------------
    def send_state(self, key: Any = None) -> None:
        """The view-state traits (transcript, timelines, live) are built by view_state from
        strings and numbers only, never bytes: their updates skip ipywidgets' search for binary
        buffers, which walked each nested dict and list of the window's twenty turns and
        timelines on every settle. The message is the one ipywidgets sends for a state without
        buffers; any other trait goes through ipywidgets as it is."""
        names = {key} if isinstance(key, str) else set(key) if key is not None else None
        if names is None or not names <= VIEW_STATE:
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

    # -- commands from the browser --------------------------------------------------------
    def _on_custom(self, _: Any, content: Any, buffers: list[bytes] | None = None) -> None:
        if not isinstance(content, dict) or content.get("type") != "command":
            return
        request, name, args = content.get("id"), content.get("name"), content.get("args")
        try:
            if name not in _HANDLERS:
                raise ValueError(f"unknown command {name!r}")
            check(args, COMMANDS[name][0], f"{name}")
            result = _HANDLERS[name](self, args, buffers or [])
        except (AtomemoError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            error = error_view(exc) or {"code": "ERROR", "message": str(exc)}
            if name in USER_FACING:
                self.notice = {**error, "draft": str((args or {}).get("text", ""))}
            self.send({"type": "reply", "id": request, "ok": False, "error": error})
            return
        self.send({"type": "reply", "id": request, "ok": True, "result": result})

    @_command("hello")
    def _hello(self, args: dict[str, Any], buffers: list[bytes]) -> Any:
        return self._pump.snapshot() if self._pump is not None else None

    @_command("send")
    def _send_text(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        text = args["text"]
        if text.strip() or self._file is not None:
            self._submit(text, LEAF)

    @_command("stop")
    def _stop(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        self.stop()

    @_command("regenerate")
    def _regenerate(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        parent_id, query = self._chat.branch_point(args["message_id"])
        self._submit(query, parent_id)

    @_command("edit")
    def _edit(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        parent_id, _ = self._chat.branch_point(args["message_id"])
        self._submit(args["text"], parent_id)

    @_command("select")
    def _select(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        self._chat.select(args["message_id"])
        self._settle()

    @_command("new_conversation")
    def _new(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        runtime.submit(self._fresh_start())

    @_command("open_conversation")
    def _open(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        runtime.submit(self._switch(args["id"]))

    @_command("pick_demo")
    def _demo_app(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        runtime.submit(self._pick_demo(args["slug"]))

    @_command("set_inputs")
    def _set_inputs(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        self._chat.inputs = _coerce_inputs(args["inputs"], self.header.get("variables") or [])
        self.header = {**self.header, "inputs": dict(self._chat.inputs)}

    @_command("attach")
    def _attach_file(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        if len(buffers) != 1:
            raise ValueError("attach carries the file as exactly one binary buffer")
        runtime.submit(self._attach_from_browser(bytes(buffers[0]), args["filename"] or "file",
                                                 args["mime_type"] or None))

    @_command("detach")
    def _detach(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        self._file = None
        self.attachment = {}

    @_command("load_older")
    def _load_older(self, args: dict[str, Any], buffers: list[bytes]) -> None:
        self._window = min(self._window + WINDOW, WINDOW_MAX)
        self._settle()

    @_command("answer")
    def _answer(self, args: dict[str, Any], buffers: list[bytes]) -> dict[str, Any]:
        message = self._chat.tree[args["message_id"]]
        message.refresh_from_reply()
        return {"message_id": message.id, "answer": message.answer or ""}

    @_command("detail")
    def _detail(self, args: dict[str, Any], buffers: list[bytes]) -> Any:
        reply = self._chat.tree[args["message_id"]].reply
        if reply is None:
            raise KeyError(f"message {args['message_id']!r} was not streamed in this session")
        return node_detail(reply, args["key"])

    @_command("compare")
    def _compare(self, args: dict[str, Any], buffers: list[bytes]) -> Any:
        rows = self._chat.compare_records(args["a"], args["b"])
        return compare_view(rows, word_diff(str(rows[0]["output_a"]), str(rows[0]["output_b"])))

    @_command("events")
    def _events(self, args: dict[str, Any], buffers: list[bytes]) -> Any:
        return events_page(self._chat.replies, message_id=args["message_id"],
                           event_filter=args["event_filter"], search=args["search"],
                           offset=args["offset"], limit=args["limit"] or EVENTS_PAGE)

    async def _attach_from_browser(self, data: bytes, filename: str, mime_type: str | None) -> None:
        try:
            await self._attach(data, filename, mime_type)
        except AtomemoError as exc:
            self.notice = {**(error_view(exc) or {}), "draft": ""}


missing = set(COMMANDS) - set(_HANDLERS)
if missing:  # pragma: no cover - a declared command without a handler is a bug at import
    raise RuntimeError(f"commands without a handler: {sorted(missing)}")


def _coerce_inputs(raw: Any, variables: list[dict[str, Any]]) -> dict[str, Any]:
    """Form values arrive as text: numbers become numbers, empty optional fields are dropped."""
    if not isinstance(raw, dict):
        raise ValueError("inputs must be an object")
    kinds = {v.get("variable"): v.get("type") for v in variables if isinstance(v, dict)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value in ("", None):
            continue
        if kinds.get(key) == "number" and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {value!r}") from None
            out[key] = int(number) if number.is_integer() else number
        else:
            out[key] = value
    return out
