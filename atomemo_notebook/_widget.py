"""ChatWidget: the conversation model rendered in the notebook by an anywidget front end
(js/src). Python owns the client and the key; the browser only sees view state.

Streaming text travels as coalesced `live` custom messages (at most ~30 per second); the
settled conversation lives in traits, so a reloaded page or a second view recovers it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import pathlib
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from . import _runtime as runtime
from ._chat import LEAF, AsyncChat
from ._client import AsyncClient
from ._errors import AtomemoError
from ._events import Event
from ._models import FileRef
from ._reply import Reply
from ._view_state import error_view, event_rows, live_view, messages_view, timeline_view

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import HTML

STATIC = pathlib.Path(__file__).parent / "static"
FLUSH_INTERVAL = 1 / 30  # seconds between live messages to the browser
TIMELINE_EVENTS = frozenset({"execution_started", "execution_finished", "node_started", "node_finished",
                             "tool_call_started", "tool_response", "_stream_recovered"})
DEFAULT_USER = "notebook-user"


class _LivePump:
    """Sends one streaming reply to the browser: text deltas and timeline changes, coalesced."""

    def __init__(self, widget: ChatWidget, reply: Reply, key: str) -> None:
        self.widget, self.reply, self.key = widget, reply, key
        self.seq = 0
        self.sent = 0  # characters of reply.text already sent
        self.resets = 0  # reply.text_resets already passed on
        self.timeline_dirty = True
        self.message_id: str | None = None
        reply.on_update(self._on_event)
        self.task = asyncio.get_running_loop().create_task(self._run())

    def _on_event(self, reply: Reply, event: Event | None) -> None:
        if event is not None and event.event in TIMELINE_EVENTS:
            self.timeline_dirty = True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            done = self.reply.done  # read before flushing: the last flush then sees the end
            self.flush()
            if done:
                return

    def flush(self) -> None:
        text = self.reply.text
        msg: dict[str, Any] = {"type": "live", "key": self.key, "status": self.reply.status}
        if self.reply.text_resets != self.resets:
            self.resets = self.reply.text_resets
            msg["reset"] = text  # the stored answer replaced the streamed one
        elif len(text) > self.sent:
            msg["append"] = text[self.sent:]
        self.sent = len(text)
        if self.reply.message_id != self.message_id:
            self.message_id = msg["message_id"] = self.reply.message_id
        if self.timeline_dirty:
            self.timeline_dirty = False
            msg["timeline"] = timeline_view(self.reply)
        if len(msg) > 3 or self.reply.done:
            self.seq += 1
            msg["seq"] = self.seq
            self.widget.send(msg)

    def snapshot(self) -> dict[str, Any]:
        return {"type": "live_snapshot", "key": self.key, "seq": self.seq,
                "text": self.reply.text[:self.sent], "message_id": self.message_id,
                "status": self.reply.status, "timeline": timeline_view(self.reply)}


class ChatWidget(anywidget.AnyWidget):
    """Chat with an Atomemo workflow inside the notebook: streaming answers, a live execution
    timeline, the message tree with branches, and a raw event inspector.

    With no arguments and no ATOMEMO_API_KEY it starts the embedded demo server (offline).
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    header = traitlets.Dict().tag(sync=True)
    """App name/version/emoji, offline flag, demo apps, trigger variables and inputs. Type: dict."""
    messages: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    """Settled messages of the conversation tree, in creation order. Type: list of dicts."""
    leaf_id = traitlets.Unicode("").tag(sync=True)
    """The message whose path is shown; the next question continues from it. Default: ''."""
    timelines = traitlets.Dict().tag(sync=True)
    """message id -> execution timeline (nodes, tools, summary). Type: dict."""
    live = traitlets.Dict().tag(sync=True)
    """The reply streaming now ({key, query, parent_id, ...}), or {} when idle."""
    notice = traitlets.Dict().tag(sync=True)
    """The last error shown in the chat: {code, message, draft}, or {}."""
    conversations: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    """Past conversations of this user and app: [{id, name, updated_at}]."""
    attachment = traitlets.Dict().tag(sync=True)
    """The file attached to the next message: {filename, size, mime_type}, or {}."""
    focus_id = traitlets.Unicode("").tag(sync=True)
    """Compact views (the cell magic) show only this message. Default: '' (all)."""
    compact = traitlets.Bool(False).tag(sync=True)
    """Hide the header and side panel (used by %%atomemo). Default: False."""

    def __init__(
        self,
        app_id: str | None = None,
        trigger_id: str | None = None,
        user_id: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        inputs: dict[str, Any] | None = None,
        conversation_id: str | None = None,
        demo: str = "support",
        compact: bool = False,
        chat: AsyncChat | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(compact=compact, **kwargs)
        key = api_key or os.environ.get("ATOMEMO_API_KEY")
        self._offline = not key
        self._demo = demo
        self._asking = False
        if chat is not None:
            # Another view of an existing conversation (the cell magic): same client, same chat.
            client = chat.client
            self._offline = runtime.is_demo(client.base_url)
            app_id, trigger_id = chat.app_id, chat.trigger_id
        elif self._offline:
            server = runtime.demo_server()
            app = server.app(demo)
            client = AsyncClient(server.api_key, base_url=server.base_url)
            app_id, trigger_id = app["app_id"], app["trigger_id"]
        else:
            app_id = app_id or os.environ.get("ATOMEMO_APP_ID")
            trigger_id = trigger_id or os.environ.get("ATOMEMO_TRIGGER_ID")
            if not app_id or not trigger_id:
                raise ValueError("with an API key, give app_id and trigger_id "
                                 "(or set ATOMEMO_APP_ID and ATOMEMO_TRIGGER_ID)")
            client = AsyncClient(key, base_url=base_url)
        self._client = client
        self._user_id = user_id or os.environ.get("ATOMEMO_USER_ID") or DEFAULT_USER
        self._inputs = dict(inputs or {})
        self._keys = itertools.count(1)
        self._pump: _LivePump | None = None
        self._running: Future[Any] | None = None
        self._file: FileRef | None = None
        self._own: Reply | None = None  # the last reply this view asked for
        if chat is not None:
            self._chat = chat
            self._user_id = chat.user_id
            chat.reply_listeners.append(self._on_reply_started)
        else:
            self._chat = self._new_chat(app_id, trigger_id, conversation_id)
        self.on_msg(self._on_custom)
        self._booted = runtime.submit(self._boot(conversation_id is not None))

    def __repr__(self) -> str:
        mode = "offline demo" if self._offline else "Atomemo API"
        return f"ChatWidget({mode}, app={self.header.get('app_name')!r}, messages={len(self.messages)})"

    # -- the Python API, mirroring the UI -------------------------------------------------
    @property
    def conversation(self) -> AsyncChat:
        """The AsyncChat behind the widget (it runs on the widget's background loop)."""
        return self._chat

    def ask(self, text: str | FileRef, *, parent_id: Any = LEAF) -> Reply:
        """Send a question; returns the Reply at once while it streams (reply.wait() to block)."""
        started: Future[Reply] = Future()
        self._submit(text, parent_id, started)
        return started.result(timeout=60)

    def stop(self) -> None:
        """Stop the answer being streamed; its partial text is kept."""
        runtime.call_soon(self._chat.stop)

    def regenerate(self, message_id: str) -> Reply:
        """A new answer to a message's question, as its sibling."""
        parent_id, query = self._chat._branch_point(message_id)
        return self.ask(query, parent_id=parent_id)

    def edit(self, message_id: str, new_query: str) -> Reply:
        """Ask `new_query` in place of a message's question, as its sibling."""
        parent_id, _ = self._chat._branch_point(message_id)
        return self.ask(new_query, parent_id=parent_id)

    def wait(self, timeout: float | None = 120) -> None:
        """Block until the current answer (if any) has finished and the view state is settled."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                self._running.result(timeout)

    def new_conversation(self) -> None:
        runtime.submit(self._switch(self._chat.app_id, self._chat.trigger_id, None)).result(30)

    def open_conversation(self, conversation_id: str) -> None:
        runtime.submit(self._switch(self._chat.app_id, self._chat.trigger_id, conversation_id)).result(30)

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

    def history_df(self) -> pd.DataFrame:
        return self._chat.history_df()

    def timeline_df(self) -> pd.DataFrame:
        return self._chat.timeline_df()

    def events_df(self) -> pd.DataFrame:
        return self._chat.events_df()

    def save_events(self, path: str | os.PathLike[str]) -> pathlib.Path:
        return self._chat.save_events(pathlib.Path(path))

    def snapshot(self) -> HTML:
        """Transcript + timeline as sanitized static HTML: what a saved notebook shows without a kernel."""
        from IPython.display import HTML

        from ._snapshot import snapshot_html

        return HTML(snapshot_html(self.header, self.messages, self.timelines, self.leaf_id))  # type: ignore[no-untyped-call]

    def export_html(self, path: str | os.PathLike[str]) -> pathlib.Path:
        from ._snapshot import snapshot_page

        target = pathlib.Path(path)
        target.write_text(snapshot_page(self.header, self.messages, self.timelines, self.leaf_id),
                          encoding="utf-8")
        return target

    # -- running on the background loop ---------------------------------------------------
    def _submit(self, query: str | FileRef, parent_id: Any, started: Future[Reply] | None = None) -> None:
        """Start one answer on the background loop; one at a time per widget."""
        if self._running is not None and not self._running.done():
            raise RuntimeError("an answer is still streaming: stop it first")
        self._running = runtime.submit(self._ask(query, parent_id, started))

    def _new_chat(self, app_id: str, trigger_id: str, conversation_id: str | None) -> AsyncChat:
        chat = self._client.chat(app_id=app_id, trigger_id=trigger_id, user_id=self._user_id,
                                 inputs=self._inputs, conversation_id=conversation_id, source="notebook")
        chat.reply_listeners.append(self._on_reply_started)
        return chat

    def _on_reply_started(self, reply: Reply) -> None:
        if self.compact and not self._asking:
            return  # a compact view follows only the replies it asked for
        key = f"r{next(self._keys)}"
        self._pump = _LivePump(self, reply, key)
        self.live = live_view(reply, key)
        self.notice = {}

    async def _boot(self, load_history: bool) -> None:
        app = await self._chat.load_app()
        from .server import DEMO_APPS  # the demo list is static data, present with the package

        version = app.active_version if app else None
        variables: list[Any] = []
        if version is not None:
            for node in (version.snapshot.get("nodes") or {}).values():
                if isinstance(node, dict) and node.get("type") == "chat_trigger":
                    variables = list((node.get("data") or {}).get("variables") or [])
        self.header = {
            "app_name": app.name if app else self._chat.app_id,
            "app_version": version.name if version else "",
            "app_emoji": (app.icon or {}).get("emoji", "") if app else "",
            "app_color": app.color if app else None,
            "description": app.description if app else None,
            "offline": self._offline,
            "demo_apps": [{"slug": d.slug, "name": d.name} for d in DEMO_APPS.values()]
            if self._offline else [],
            "demo": self._demo if self._offline else None,
            "user_id": self._user_id,
            "variables": variables,
            "inputs": dict(self._chat.inputs),
        }
        if load_history:
            with contextlib.suppress(AtomemoError):
                await self._chat.history()
        await self._refresh_conversations()
        self._settle()

    async def _refresh_conversations(self) -> None:
        try:
            items = await self._client.list_conversations(
                app_id=self._chat.app_id, trigger_id=self._chat.trigger_id, user_id=self._user_id)
        except AtomemoError:
            return
        self.conversations = [{"id": c.id, "name": c.name,
                               "updated_at": c.updated_at.isoformat() if c.updated_at else None}
                              for c in items]

    async def _ask(self, text: str | FileRef, parent_id: Any, started: Future[Reply] | None) -> None:
        with contextlib.suppress(Exception):  # a failed boot (no app info) must not block asking
            await asyncio.wrap_future(self._booted)
        query: str | FileRef = text
        draft = text if isinstance(text, str) else ""
        if self._file is not None and (not isinstance(text, str) or not text.strip()):
            query, self._file = self._file, None
            self.attachment = {}
        new_conversation = self._chat.conversation_id is None

        def on_start(reply: Reply) -> None:
            self._own = reply
            if started is not None and not started.done():
                started.set_result(reply)

        self._chat.reply_listeners.append(on_start)
        self._asking = True
        try:
            await self._chat.ask(query, parent_id=parent_id)
        except (AtomemoError, ValueError, TypeError) as exc:
            self.notice = {**(error_view(exc) or {}), "draft": draft}
            if started is not None and not started.done():
                started.set_exception(exc)
        finally:
            self._asking = False
            self._chat.reply_listeners.remove(on_start)
            if self._pump is not None:
                await self._pump.task
                self._pump = None
            self._settle()
        if new_conversation:
            await self._refresh_conversations()

    def _settle(self) -> None:
        """Put the settled conversation into the traits (one update per finished reply)."""
        # hold_sync: the transcript and the cleared live turn reach the browser as one message.
        with self.hold_sync():
            self.messages = messages_view(self._chat.tree)
            self.timelines = {r.message_id: timeline_view(r) for r in self._chat.replies
                              if r.message_id and r.done}
            self.leaf_id = self._chat.leaf_id or ""
            if self.compact and self._own is not None and self._own.message_id:
                self.focus_id = self._own.message_id
            self.header = {**self.header, "conversation_id": self._chat.conversation_id,
                           "inputs": dict(self._chat.inputs)}
            self.live = {}

    async def _switch(self, app_id: str, trigger_id: str, conversation_id: str | None) -> None:
        self._chat.stop()
        self._chat = self._new_chat(app_id, trigger_id, conversation_id)
        await self._chat.load_app()
        if conversation_id is not None:
            await self._chat.history()
        self.notice = {}
        self._settle()
        await self._refresh_conversations()

    async def _pick_demo(self, slug: str) -> None:
        if not self._offline:
            raise ValueError("demo apps exist only with the offline demo server")
        app = runtime.demo_server().app(slug)
        self._demo = slug
        self._inputs = {}
        await self._switch(app["app_id"], app["trigger_id"], None)
        await self._boot(False)

    async def _attach(self, source: str | os.PathLike[str] | bytes, filename: str | None,
                      mime_type: str | None) -> FileRef:
        ref = await self._client.upload_file(source, filename=filename, mime_type=mime_type)
        self._file = ref
        self.attachment = {"filename": ref.filename, "size": ref.size, "mime_type": ref.mime_type}
        return ref

    # -- messages from the browser --------------------------------------------------------
    def _on_custom(self, _: Any, content: Any, buffers: list[bytes] | None = None) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            self._handle(kind, content, buffers or [])
        except (AtomemoError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            self.notice = {**(error_view(exc) or {}), "draft": content.get("text", "")}

    def _handle(self, kind: Any, msg: dict[str, Any], buffers: list[bytes]) -> None:
        if kind == "hello":
            if self._pump is not None:
                self.send(self._pump.snapshot())
        elif kind == "send":
            text = str(msg.get("text", ""))
            if text.strip() or self._file is not None:
                self._submit(text, LEAF)
        elif kind == "stop":
            self.stop()
        elif kind == "regenerate":
            parent_id, query = self._chat._branch_point(str(msg["message_id"]))
            self._submit(query, parent_id)
        elif kind == "edit":
            parent_id, _ = self._chat._branch_point(str(msg["message_id"]))
            self._submit(str(msg["text"]), parent_id)
        elif kind == "select":
            self.leaf_id = self._chat.select(str(msg["message_id"]))
        elif kind == "new_conversation":
            runtime.submit(self._switch(self._chat.app_id, self._chat.trigger_id, None))
        elif kind == "open_conversation":
            runtime.submit(self._switch(self._chat.app_id, self._chat.trigger_id, str(msg["id"])))
        elif kind == "pick_demo":
            runtime.submit(self._pick_demo(str(msg["slug"])))
        elif kind == "set_inputs":
            self._chat.inputs = _coerce_inputs(msg.get("inputs"), self.header.get("variables") or [])
            self.header = {**self.header, "inputs": dict(self._chat.inputs)}
        elif kind == "attach":
            data = buffers[0] if buffers else base64.b64decode(str(msg.get("data", "")))
            runtime.submit(self._attach_from_browser(bytes(data), str(msg.get("filename") or "file"),
                                                     msg.get("mime_type") or None))
        elif kind == "detach":
            self._file = None
            self.attachment = {}
        elif kind == "events":
            page = event_rows(self._chat.replies, message_id=msg.get("message_id"),
                              event_filter=msg.get("event_filter"))
            self.send({"type": "events", "req": msg.get("req"), **page})

    async def _attach_from_browser(self, data: bytes, filename: str, mime_type: str | None) -> None:
        try:
            await self._attach(data, filename, mime_type)
        except AtomemoError as exc:
            self.notice = {**(error_view(exc) or {}), "draft": ""}


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
