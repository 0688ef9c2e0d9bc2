"""The widget's chat (built, or given) at work on the background loop: it boots the header, asks
(one answer at a time, an attached file first), follows answers the server is still giving,
switches conversations and demo apps, folds replayed logs in, and settles what the widget shows
into its traits; the widget's blocking methods wait here, within deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pathlib
import sys
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..model.chat import LEAF, AsyncChat, Chat
from ..model.reply import Reply
from ..protocol._errors import AtomemoError
from ..protocol._systems import system_label
from ..protocol._wire import FileRef
from ..session import _runtime as runtime
from ..session._connect import as_async, connect
from ._graph import published_graph
from ._live import LivePump
from ._tape import Tapes
from ._view_state import WINDOW, TimelineCache, error_view, live_view, transcript_view, window_timelines

if TYPE_CHECKING:
    from ._widget import ChatWidget

CONVERSATIONS_SHOWN = 100
SETTLE_WAIT = 10.0  # seconds an ask waits for the view of a whole answer to settle
CLOSE_WAIT = 10.0  # seconds close() waits for the chat (and its WebSocket) to close


def chat_for(system: str, chat: Chat | AsyncChat | None, settings: dict[str, Any],
             **coordinates: Any) -> tuple[AsyncChat, bool, bool]:
    """The chat a widget shows, whether other views share it, and whether the widget owns (closes)
    it: the chat given, as an AsyncChat, or one built from the system's coordinates and `settings`
    (another setting of the system, such as Dify's web_app_code, or a client option)."""
    if chat is not None:
        if settings:
            raise TypeError(f"{', '.join(sorted(settings))}: settings of a chat ChatWidget builds; "
                            "the chat given is already built")
        # Another view of an existing conversation (the cell magic too): the same chat.
        own = as_async(chat)
        return own, True, own is not chat  # the async twin of a sync chat is ours
    return connect(system, **coordinates, source="notebook", asynchronous=True, **settings), False, True


class Orchestrator:
    """Runs one widget's chat and keeps the widget's traits in step with it. Its coroutines run
    on the background loop (`runtime`); its blocking methods (the widget's ask, wait, replay and
    close) wait for them from the kernel's thread."""

    def __init__(self, widget: ChatWidget, chat: AsyncChat, *, shared: bool, owns_chat: bool) -> None:
        self.widget = widget
        self.chat, self.shared, self.owns_chat = chat, shared, owns_chat
        self.system = chat.system
        self.asking = False
        self.keys = itertools.count(1)
        self.pump: LivePump | None = None
        self.running: Future[Any] | None = None
        # Asking, in the sense the user sees: cleared just before the settled turn is shown (not
        # when `running` ends a moment later), so a Regenerate clicked then is not refused.
        self.busy = False
        self.file: FileRef | None = None
        self.own: Reply | None = None  # the last reply this view asked for
        self.window = WINDOW
        self.named_by_id = False  # the header shows the app by its id until an answer names it
        self.timelines: TimelineCache = {}  # the window's finished timelines, built once each
        self.tapes = Tapes()  # time travel's tapes, asked for by the view
        self.listing: Future[None] | None = None  # the list of conversations, loading beside an answer
        chat.reply_listeners.append(self.on_reply_started)

    @property
    def offline(self) -> bool:
        return bool(self.chat.origin.get("offline"))

    def submit(self, query: str | FileRef, parent_id: Any, started: Future[Reply] | None = None) -> None:
        """Start one answer on the background loop; one at a time per widget."""
        if self.busy:
            raise RuntimeError("an answer is still streaming: stop it first")
        self.busy = True
        try:
            self.running = runtime.submit(self._ask(query, parent_id, started))
        except BaseException:
            self.busy = False
            raise

    def on_reply_started(self, reply: Reply) -> None:
        widget = self.widget
        if (widget.compact or self.shared) and not self.asking:
            return  # a view of a shared chat follows only the replies it asked for
        key = f"r{next(self.keys)}"
        if reply.message_id is not None:  # a turn that waited goes on: it streams again, not settled
            self.settle()
        self.pump = LivePump(lambda msg: widget.send(msg), reply, key)  # widget.send as it is at each flush
        widget.live = live_view(reply, key)
        widget.notice = {}

    async def boot(self, load_history: bool) -> None:
        chat, widget = self.chat, self.widget
        app = await chat.load_app()
        demo_apps = runtime.demo_server().apps.values() if self.offline else ()
        # A system that publishes no app names it by its id (OdysseyAI's agent slug): the demo's name is known.
        demo_names = {d["slug"]: d["name"] for d in demo_apps}
        caps = chat.capabilities
        # Shown by its id until an answer names it (OdysseyAI's agent on a real server).
        self.named_by_id = app is not None and app.provisional and app.name not in demo_names
        widget.header = {
            "app_name": demo_names.get(app.name, app.name) if app else (chat.app_id or self.system),
            "app_version": app.version if app else "",
            "app_emoji": app.emoji if app else "",
            "app_color": app.color if app else None,
            "description": (app.opening or app.description) if app else None,
            "system": self.system,
            "system_label": system_label(self.system),
            "offline": self.offline,
            "demo_apps": [{"slug": d["slug"], "name": d["name"]} for d in demo_apps],
            "demo": chat.origin.get("demo") if self.offline else None,
            "user_id": chat.user_id,
            "variables": list(app.variables) if app else [],
            "inputs": dict(chat.inputs),
            "examples": list(app.examples) if app else [],
            "graph": published_graph(app),
            "takes_inputs": chat.backend.plans.takes_inputs,
            "capabilities": {"token_streaming": caps.token_streaming, "stop": caps.stop,
                             "branching": caps.branching, "files": caps.files,
                             "conversations": caps.conversations, "new_conversation": caps.new_conversation,
                             **({"regenerate_reason": caps.branching_reason}
                                if caps.branching_reason else {}),
                             **({"stop_note": caps.stop_note} if caps.stop_note else {}),
                             "feedback": caps.feedback,
                             **({"feedback_reason": caps.feedback_reason} if caps.feedback_reason else {})},
        }
        if load_history:
            with contextlib.suppress(AtomemoError):
                await chat.history()
        await self.refresh_conversations()
        self.settle()
        self.follow_running()
        self.reopen_waiting()

    async def refresh_conversations(self) -> None:
        try:
            items = await self.chat.conversations()
        except AtomemoError:
            return
        self.widget.conversations = [{"id": c.id, "name": c.name[:200],
                                      "updated_at": c.updated_at.isoformat() if c.updated_at else None}
                                     for c in items[:CONVERSATIONS_SHOWN]]

    async def _ask(self, text: str | FileRef, parent_id: Any, started: Future[Reply] | None) -> None:
        try:
            with contextlib.suppress(Exception):  # a failed boot (no app info) must not block asking
                await asyncio.wrap_future(self.widget.booted)
        except BaseException:  # cancelled before asking: free again
            self.busy = False
            raise
        draft = text if isinstance(text, str) else ""
        # An attached file and a typed question go together: the file's message first, then
        # the question continuing from it (a message of this API is text or a file, not both).
        queries: list[str | FileRef] = []
        if self.file is not None:
            queries.append(self.file)
            self.file = None
            self.widget.attachment = {}
        if not isinstance(text, str) or text.strip():
            queries.append(text)
        new_conversation = self.chat.conversation_id is None
        if not queries:
            self.busy = False  # nothing to ask; each _ask_one frees it otherwise (never here, later:
            return             # a Regenerate accepted in between would be marked free again)

        def on_start(reply: Reply) -> None:
            self.own = reply
            if started is not None and not started.done():
                started.set_result(reply)

        self.chat.reply_listeners.append(on_start)
        try:
            for index, query in enumerate(queries):
                last = index == len(queries) - 1
                if not await self._ask_one(query, parent_id if index == 0 else LEAF, draft, started, last):
                    break
        finally:
            self.chat.reply_listeners.remove(on_start)
        if new_conversation:
            # The list of conversations is refreshed beside the answer, not as its last step: the
            # answer has settled, and a Regenerate clicked now must not be refused as "still
            # streaming" while the list loads (it was, 1 browser run in ~50).
            self.listing = runtime.submit(self.refresh_conversations())  # widget.wait() waits for it too

    async def _ask_one(self, query: str | FileRef, parent_id: Any, draft: str,
                       started: Future[Reply] | None, last: bool = True) -> bool:
        """One question, streamed and settled; False when it could not be asked."""
        self.asking = True
        reply: Reply | None = None
        try:
            reply = await self.chat.ask(query, parent_id=parent_id)
        except (AtomemoError, ValueError, TypeError) as exc:
            self.widget.notice = {**(error_view(exc) or {}), "draft": draft}
            if started is not None and not started.done():
                started.set_exception(exc)
            return False
        finally:
            self.asking = False
            if self.pump is not None:
                await self.pump.done
                self.pump = None
            if last or reply is None or reply.status in ("failed", "stopped"):
                self.busy = False  # before the settled turn shows (see __init__)
            self.settle()
        if reply.status == "stopped":
            self.follow_running([reply.message_id])
        return reply.status not in ("failed", "stopped")

    def respond(self, message_id: str, action: str, inputs: dict[str, str]) -> None:
        """Answer the form the turn `message_id` waits on; the run goes on in that turn, live."""
        if self.running is not None and not self.running.done():
            raise RuntimeError("an answer is still streaming: stop it first")
        reply = self.chat.tree[message_id].reply if message_id in self.chat.tree else None
        if reply is None or reply.pending_input is None:
            raise ValueError("this turn waits on no form (it was answered, or it is not this session's)")
        self.running = runtime.submit(self._respond(reply, action, inputs))

    async def _respond(self, reply: Reply, action: str, inputs: dict[str, str]) -> None:
        self.asking = True
        try:
            await self.chat.respond(reply, action, **inputs)
        except (AtomemoError, ValueError, TypeError) as exc:
            self.widget.notice = {**(error_view(exc) or {}), "draft": ""}
        finally:
            self.asking = False
            if self.pump is not None:
                await self.pump.done
                self.pump = None
            self.settle()

    async def feedback(self, message_id: str, rating: str | None, comment: str | None) -> None:
        try:
            await self.chat.feedback(message_id, rating, comment)
        except (AtomemoError, ValueError) as exc:
            self.widget.notice = {**(error_view(exc) or {}), "draft": ""}
        self.settle()

    def reopen_waiting(self) -> None:
        """Turns read from history that wait on a form: their run's state is read back so the
        form shows, and can be answered here."""
        chat = self.chat
        if not chat.capabilities.human_input:
            return
        waiting = [t["id"] for t in self.widget.transcript["turns"]
                   if t["status"] == "waiting" and not t.get("form") and chat.tree[t["id"]].reply is None]
        if waiting:
            runtime.submit(self._reopen_waiting(chat, waiting))

    async def _reopen_waiting(self, chat: AsyncChat, message_ids: list[str]) -> None:
        for message_id in message_ids[-5:]:  # the newest few: each is a stream of its run's state
            with contextlib.suppress(AtomemoError, ValueError):
                await chat.reopen(message_id)
        if chat is self.chat and (self.running is None or self.running.done()):
            self.settle()

    def follow_running(self, message_ids: list[str | None] | None = None) -> None:
        """Messages the server is still answering (reopened mid-run, or stopped by us): follow
        each quietly to its end, then show how it really ended."""
        chat = self.chat
        shown = message_ids if message_ids is not None else [t["id"] for t in self.widget.transcript["turns"]]
        running = chat.running_on_server(set(shown))
        if running:
            runtime.submit(self._follow(chat, running))

    async def _follow(self, chat: AsyncChat, message_ids: list[str]) -> None:
        for message_id in message_ids:
            with contextlib.suppress(AtomemoError):
                await chat.follow(message_id)
        if chat is self.chat and (self.running is None or self.running.done()):
            self.settle()

    def settle(self) -> None:
        """Put the settled conversation into the traits: a bounded window, one update."""
        chat, widget = self.chat, self.widget
        transcript = transcript_view(chat.tree, chat.leaf_id, self.window)
        # hold_sync: the transcript and the cleared live turn reach the browser as one message.
        with widget.hold_sync():
            widget.transcript = transcript
            widget.timelines = window_timelines(chat.tree, transcript, self.timelines)
            if widget.compact and self.own is not None and self.own.message_id:
                widget.focus_id = self.own.message_id
            header = {**widget.header, "conversation_id": chat.conversation_id, "inputs": dict(chat.inputs)}
            if self.named_by_id and chat.app is not None and not chat.app.provisional:
                header["app_name"], self.named_by_id = chat.app.name, False  # an answer named it
            widget.header = header
            widget.live = {}
        widget._fallback.refresh()

    async def switch(self, conversation_id: str | None, chat: AsyncChat | None = None) -> None:
        old = self.chat
        old.stop()
        self.chat = chat or old.fresh(conversation_id)
        if chat is None:
            if self.owns_chat:  # the same backend: the new chat takes over closing what the old one owned
                self.chat.owns_client, old.owns_client = old.owns_client, False
        elif self.owns_chat:
            await old.close()  # another demo app: its client (and any WebSocket) goes
        self.owns_chat = self.owns_chat or chat is not None
        self.chat.reply_listeners.append(self.on_reply_started)
        self.window = WINDOW
        self.timelines.clear()
        await self.chat.load_app()
        if conversation_id is not None:
            await self.chat.history()
        self.widget.notice = {}
        self.settle()
        self.follow_running()
        self.reopen_waiting()
        await self.refresh_conversations()

    async def fresh_start(self) -> None:
        if self.chat.capabilities.new_conversation == "clear":
            self.chat.stop()
            await self.chat.clear()
            self.widget.notice = {}
            self.settle()
            return
        await self.switch(None)

    async def pick_demo(self, slug: str) -> None:
        if not self.offline:
            raise ValueError("demo apps exist only with the offline demo server")
        chat = connect(self.system, demo=slug, user_id=self.chat.user_id, source="notebook",
                       asynchronous=True)
        await self.switch(None, chat)
        await self.boot(False)

    async def attach(self, source: str | os.PathLike[str] | bytes, filename: str | None,
                     mime_type: str | None) -> FileRef:
        ref = await self.chat.backend.upload(source, filename=filename, mime_type=mime_type,
                                             user=self.chat.user_id)
        self.file = ref
        self.widget.attachment = {"filename": ref.filename, "size": ref.size, "mime_type": ref.mime_type}
        return ref

    def detach(self) -> None:
        self.file = None
        self.widget.attachment = {}

    async def attach_from_browser(self, data: bytes, filename: str, mime_type: str | None) -> None:
        try:
            await self.attach(data, filename, mime_type)
        except AtomemoError as exc:
            self.widget.notice = {**(error_view(exc) or {}), "draft": ""}

    # -- what the widget's blocking methods run, on the kernel's thread ------------------------
    def ask(self, text: str | FileRef, parent_id: Any) -> Reply:
        """Ask, and return the Reply once it starts. An answer that is whole but whose view is
        still settling (a few milliseconds) is waited for first, not refused as still streaming."""
        running, own = self.running, self.own
        if running is not None and not running.done() and own is not None and own.done:
            with contextlib.suppress(Exception):
                running.result(SETTLE_WAIT)
        started: Future[Reply] = Future()
        self.submit(text, parent_id, started)
        return started.result(timeout=60)

    def wait(self, timeout: float | None) -> None:
        """Block until the current answer (if any) has finished and the view state is settled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for part in ("running", "listing"):  # the answer, then the list it may refresh (read once it ends)
            work = getattr(self, part)
            if work is not None:
                with contextlib.suppress(Exception):
                    work.result(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def replay(self, source: str | os.PathLike[str]) -> list[Reply]:
        """Fold a saved event log into the conversation shown and open its last reply in time travel."""
        from ..model._replay import replay

        if self.running is not None and not self.running.done():
            raise RuntimeError("an answer is still streaming: stop it first")
        replies = [r for r in replay(pathlib.Path(source)) if r.message_id]
        if not replies:
            raise ValueError(f"{source}: no reply with a message id to show")
        runtime.submit(self._show_replayed(replies)).result(30)
        return replies

    async def _show_replayed(self, replies: list[Reply]) -> None:
        chat = self.chat  # on the loop, where the chat's tree changes
        for reply in replies:
            chat.tree.add_reply(reply, source="replay")
            chat.replies.append(reply)
        chat.leaf_id = replies[-1].message_id
        self.settle()
        self.widget.header = {**self.widget.header, "travel": replies[-1].message_id}

    def close(self, wait: bool) -> None:
        """Close the chat if the widget owns it. Closed when this returns (its WebSocket thread
        ended), within a deadline; never waited for on the widget's own loop, when `wait` is
        False (the garbage collector), or while the interpreter exits (the loop's daemon thread
        no longer runs: each wait would be whole)."""
        if not self.owns_chat or self.chat.closed:
            return
        closing = runtime.submit(self.chat.close())
        if wait and not runtime.on_loop() and not sys.is_finalizing():
            with contextlib.suppress(Exception):
                closing.result(CLOSE_WAIT)
