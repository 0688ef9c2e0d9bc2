"""The browser's commands: a registry per widget class, each handler small. A command is
`{type: "command", id, name, args}` (declared in `widget_protocol.COMMANDS`); every one is
answered `{type: "reply", id, ok, result | error}`, and a user-facing one that fails also shows
its error in the chat, with the typed text kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..model._compare import word_diff
from ..model.chat import LEAF
from ..protocol._errors import AtomemoError
from ..protocol.backend import inputs_message
from ..session import _runtime as runtime
from ._view_state import EVENTS_PAGE, WINDOW, WINDOW_MAX, compare_view, error_view, events_page, node_detail
from ._widget_protocol import COMMANDS, check

if TYPE_CHECKING:
    from ..model.reply import Reply
    from ._widget import ChatWidget

Handler = Callable[[Any, Any, list[bytes]], Any]  # (widget, args checked against COMMANDS, buffers) -> result


class CommandRegistry:
    """The handlers of one widget class's commands, by name; only declared commands register."""

    def __init__(self, declared: Mapping[str, Any]) -> None:
        self.declared = declared
        self.handlers: dict[str, Handler] = {}
        self.user_facing: set[str] = set()  # failures shown in the chat, not only answered

    def __call__(self, name: str, *, user_facing: bool = False) -> Callable[[Handler], Handler]:
        if name not in self.declared:
            raise KeyError(f"command {name!r} is not declared in widget_protocol.COMMANDS")

        def register(handler: Handler) -> Handler:
            self.handlers[name] = handler
            if user_facing:
                self.user_facing.add(name)
            return handler

        return register

    def check_complete(self) -> None:
        missing = set(self.declared) - set(self.handlers)
        if missing:  # a declared command without a handler is a bug at import
            raise RuntimeError(f"commands without a handler: {sorted(missing)}")

    def dispatch(self, widget: Any, content: Any, buffers: list[bytes]) -> None:
        """Run a command message's handler and answer it; anything else is not a command."""
        if not isinstance(content, dict) or content.get("type") != "command":
            return
        request, name, args = content.get("id"), content.get("name"), content.get("args")
        try:
            if name not in self.handlers:
                raise ValueError(f"unknown command {name!r}")
            check(args, self.declared[name][0], f"{name}")
            result = self.handlers[name](widget, args, buffers)
        except (AtomemoError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            error = error_view(exc) or {"code": "ERROR", "message": str(exc)}
            if name in self.user_facing:
                widget.notice = {**error, "draft": str((args or {}).get("text", ""))}
            widget.send({"type": "reply", "id": request, "ok": False, "error": error})
            return
        widget.send({"type": "reply", "id": request, "ok": True, "result": result})


CHAT_COMMANDS = CommandRegistry(COMMANDS)


@CHAT_COMMANDS("hello")
def _hello(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> Any:
    pump = widget._orchestrator.pump
    return pump.snapshot() if pump is not None else None


@CHAT_COMMANDS("send", user_facing=True)
def _send(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    text = args["text"]
    if text.strip() or widget._orchestrator.file is not None:
        widget._orchestrator.submit(text, LEAF)


@CHAT_COMMANDS("stop")
def _stop(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    widget.stop()


@CHAT_COMMANDS("regenerate", user_facing=True)
def _regenerate(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    parent_id, query = widget.chat.branch_point(args["message_id"])
    widget._orchestrator.submit(query, parent_id)


@CHAT_COMMANDS("edit", user_facing=True)
def _edit(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    parent_id, _ = widget.chat.branch_point(args["message_id"])
    widget._orchestrator.submit(args["text"], parent_id)


@CHAT_COMMANDS("respond", user_facing=True)
def _respond(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    widget._orchestrator.respond(args["message_id"], args["action"], dict(args["inputs"]))


@CHAT_COMMANDS("feedback", user_facing=True)
def _feedback(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    if not widget.chat.capabilities.feedback:
        raise ValueError(widget.chat.capabilities.feedback_reason or "this system takes no rating of an answer")
    runtime.submit(widget._orchestrator.feedback(args["message_id"], args["rating"], args["comment"]))


@CHAT_COMMANDS("select")
def _select(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    widget.chat.select(args["message_id"])
    widget._orchestrator.settle()


@CHAT_COMMANDS("new_conversation", user_facing=True)
def _new(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    runtime.submit(widget._orchestrator.fresh_start())


@CHAT_COMMANDS("open_conversation", user_facing=True)
def _open(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    runtime.submit(widget._orchestrator.switch(args["id"]))


@CHAT_COMMANDS("pick_demo", user_facing=True)
def _pick_demo(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    runtime.submit(widget._orchestrator.pick_demo(args["slug"]))


@CHAT_COMMANDS("set_inputs", user_facing=True)
def _set_inputs(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    widget.chat.inputs = coerce_inputs(args["inputs"], widget.header.get("variables") or [])
    widget.header = {**widget.header, "inputs": dict(widget.chat.inputs)}


@CHAT_COMMANDS("run", user_facing=True)
def _run(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    """A workflow app's run: the form's inputs become the chat's, and the run is asked with them."""
    widget.chat.inputs = coerce_inputs(args["inputs"], widget.header.get("variables") or [])
    widget.header = {**widget.header, "inputs": dict(widget.chat.inputs)}
    widget._orchestrator.submit(inputs_message(widget.chat.inputs), LEAF)


@CHAT_COMMANDS("attach", user_facing=True)
def _attach(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    if len(buffers) != 1:
        raise ValueError("attach carries the file as exactly one binary buffer")
    runtime.submit(widget._orchestrator.attach_from_browser(bytes(buffers[0]), args["filename"] or "file",
                                                   args["mime_type"] or None))


@CHAT_COMMANDS("detach")
def _detach(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    widget._orchestrator.detach()


@CHAT_COMMANDS("load_older")
def _load_older(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> None:
    widget._orchestrator.window = min(widget._orchestrator.window + WINDOW, WINDOW_MAX)
    widget._orchestrator.settle()


@CHAT_COMMANDS("answer")
def _answer(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> dict[str, Any]:
    message = widget.chat.tree[args["message_id"]]
    message.refresh_from_reply()
    return {"message_id": message.id, "answer": message.answer or "",
            "query": message.query if isinstance(message.query, str) else ""}


@CHAT_COMMANDS("detail")
def _detail(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> Any:
    reply = widget.chat.tree[args["message_id"]].reply
    if reply is None:
        raise KeyError(f"message {args['message_id']!r} was not streamed in this session")
    return node_detail(reply, args["key"])


@CHAT_COMMANDS("compare")
def _compare(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> Any:
    rows = widget.chat.compare_records(args["a"], args["b"])
    return compare_view(rows, word_diff(str(rows[0]["output_a"]), str(rows[0]["output_b"])))


@CHAT_COMMANDS("events")
def _events(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> Any:
    return events_page(widget.chat.replies, message_id=args["message_id"],
                       event_filter=args["event_filter"], search=args["search"],
                       offset=args["offset"], limit=args["limit"] or EVENTS_PAGE)


@CHAT_COMMANDS("tape")
def _tape(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> Any:
    pump = widget._orchestrator.pump
    reply: Reply | None
    if pump is not None and args["message_id"] == pump.key:
        reply = pump.reply  # the streaming reply, by its live key
    else:
        reply = widget.chat.tree[args["message_id"]].reply
    if reply is None:
        raise KeyError(f"message {args['message_id']!r} was not streamed in this session: no events to replay")
    return widget._orchestrator.tapes.of(reply).view(args["since"], args["patches"])


@CHAT_COMMANDS("export_html")
def _export_html(widget: ChatWidget, args: dict[str, Any], buffers: list[bytes]) -> Any:
    from ._export import export_name, write_interactive

    path, left_out = write_interactive(export_name(widget.header), widget.chat.tree, widget.chat.leaf_id,
                                       dict(widget.header))
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "left_out": left_out}


CHAT_COMMANDS.check_complete()


def coerce_inputs(raw: Any, variables: list[dict[str, Any]]) -> dict[str, Any]:
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
