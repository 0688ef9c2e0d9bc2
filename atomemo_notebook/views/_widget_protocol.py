"""The widget protocol, declared once: every synced trait of ChatWidget and every message
in both directions between the kernel and the browser, with the version they carry.

`js/src/protocol.ts` is generated from this module (`python scripts/gen_protocol.py`);
CI runs it with `--check`, so the two cannot drift. When a shape changes in a way an older
saved notebook would misread, bump PROTOCOL_VERSION and teach js/src/migrate.ts the old one.

Browser -> kernel: one message kind, a command `{type: "command", id, name, args}`, answered
by `{type: "reply", id, ok, result}` or `{type: "reply", id, ok: false, error}` (quak's
request/response pattern; anywidget's experimental `command` helpers work the same way).
Kernel -> browser, unasked: `live` deltas of the streaming reply (coalesced to ~30/s).
"""

# No `from __future__ import annotations` here: the TypedDicts must see NotRequired[...] as
# objects, not strings, for their required keys to be right (and TS to be generated from them).
import types
from typing import Any, Literal, Union

# typing_extensions' own versions: on Python 3.10 only they know NotRequired.
from typing_extensions import (  # noqa: UP035
    NotRequired,
    TypedDict,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

PROTOCOL_VERSION = 4

Status = Literal["streaming", "succeeded", "failed", "stopped", "recovered", "querying", "answering",
                 "waiting"]
"""The one status vocabulary of every view and record (docs/reference/limits-and-statuses.md).
waiting: the run paused for a person (Dify's Human Input form) and goes on once the form is answered."""

# -- shapes inside traits ---------------------------------------------------------------------


class ErrorView(TypedDict):
    code: str
    message: str
    node: NotRequired[str | None]
    """The failing node's name, when the error is a node's."""
    node_key: NotRequired[str | None]
    """That node run's key in the message's timeline (a link target)."""


class FileView(TypedDict):
    filename: str
    size: int
    mime_type: str


class VersionView(TypedDict):
    """One version of a turn (regenerated or edited), labelled by its own question and answer."""

    id: str
    query: str
    answer: str
    """The answer's start, cut at VERSION_CHARS characters."""


class SiblingsView(TypedDict):
    index: int
    count: int
    prev: str | None
    next: str | None
    # Added within protocol v2, so optional: a notebook saved before it still reads as v2.
    versions: NotRequired[list[VersionView]]
    """Every version of this turn (at most MAX_VERSIONS, around the shown one), in order."""


class CitationView(TypedDict):
    """A source the answer drew on (Dify's retriever resources)."""

    title: str
    snippet: str
    url: str | None
    score: float | None
    source: str | None


class AnswerFileView(TypedDict):
    """A file the answer came with (Dify's message_file): only http(s) URLs are kept."""

    type: str
    url: str


class FormFieldView(TypedDict):
    name: str
    type: str
    """text | paragraph | select | number"""
    default: str | None
    options: list[str]


class FormActionView(TypedDict):
    id: str
    title: str
    style: str
    """primary | default | ..., as the system names its button styles."""


class FormView(TypedDict):
    """The form a paused run waits on (Dify's Human Input): the kernel answers it, so nothing
    here answers it by itself (no token)."""

    form_id: str
    node_title: str
    content: str
    """Markdown, drawn sanitized like an answer (cut at FORM_CHARS)."""
    fields: list[FormFieldView]
    actions: list[FormActionView]
    expires_at: float | None
    """The server's epoch seconds: the view shows the time left."""
    refused: str | None
    """Why it cannot be answered here (a form too big to read): no buttons, this text."""


class TurnView(TypedDict):
    """One question and its answer on the shown path."""

    id: str
    parent_id: str | None
    query: str
    file: FileView | None
    answer: str
    """The answer, cut at ANSWER_CAP characters in the trait (see answer_chars)."""
    answer_chars: int
    """The whole answer's length: more than len(answer) means the view asks for the rest."""
    status: Status
    error: ErrorView | None
    execution_id: str | None
    created_at: str | None
    finished_at: str | None
    has_timeline: bool
    siblings: SiblingsView
    stopped_at: int | None
    """When we stopped listening but the server then finished the run: how many characters we
    had when we stopped (the answer shown is the server's whole one)."""
    # Added within protocol v2, so optional: a notebook saved before them still reads as v2.
    citations: NotRequired[list[CitationView]]
    """At most MAX_CITATIONS, each snippet cut at SNIPPET_CHARS."""
    suggestions: NotRequired[list[str]]
    """Questions to ask next (the view shows them as chips under the last answer)."""
    files: NotRequired[list[AnswerFileView]]
    query_chars: NotRequired[int]
    """The whole question's length: `query` is cut at QUERY_CAP characters in the trait."""
    outputs: NotRequired[str | None]
    """A run's outputs as JSON text (a Dify workflow app's), cut at OUTPUTS_CAP: the view shows
    them as a collapsible tree."""
    form: NotRequired[FormView | None]
    """The form this turn waits on (status waiting), answered from the view."""
    input_outcome: NotRequired[str | None]
    """How the turn's last form ended ("answered: Approve", or that it expired)."""
    feedback: NotRequired[str | None]
    """like | dislike: how the answer was rated (capabilities.feedback)."""


class TranscriptView(TypedDict):
    leaf_id: str
    turns: list[TurnView]
    """The newest turns of the path to leaf_id, oldest first (a window: see `older`)."""
    older: int
    """How many turns of the path come before the window (loaded on scroll)."""


class ToolView(TypedDict):
    key: str
    name: str
    status: str
    start_ms: float | None
    end_ms: float | None
    duration_ms: float | None
    args: str | None
    result: str | None
    anomaly: str | None


class ReasoningView(TypedDict):
    """A model's thinking (Dify's reasoning_chunk, or an answer's `<think>` block): shown
    collapsed as "Thinking…", never part of the answer."""

    text: str
    """Its newest REASONING_CAP characters (a long thought is cut at its start)."""
    chars: int
    """The whole thought's length."""
    final: bool
    """The thinking is complete: the block closes."""


class NodeView(TypedDict):
    key: str
    node_id: str
    name: str
    type: str
    status: str
    start_ms: float | None
    end_ms: float | None
    duration_ms: float | None
    error: str | None
    output: str | None
    out_ports: list[int]
    anomaly: str | None
    depth: int
    """Nesting under a Loop or an agent (0 at the top), for indenting children."""
    tools: list[ToolView]
    reported: NotRequired[bool]
    """Known only after the fact (OdysseyAI's steps): no timing, so no bar is drawn."""
    reasoning: NotRequired[ReasoningView | None]
    """The node's thinking, when its model streamed some."""


class GraphNodeView(TypedDict):
    id: str
    name: str
    type: str
    parent: str | None
    """The Loop/Iteration node it runs inside, if any."""


class GraphEdgeView(TypedDict):
    source: str
    target: str
    label: str | None


class GraphStructureView(TypedDict):
    """The workflow as its system publishes it (Atomemo's app snapshot, Pipelit's definition)."""

    nodes: list[GraphNodeView]
    edges: list[GraphEdgeView]
    cut: bool
    """More nodes than MAX_GRAPH_NODES: the rest are not drawn."""


class TimelineView(TypedDict):
    message_id: str | None
    execution_id: str | None
    status: Status
    execution_status: str | None
    ttft_ms: float | None
    total_ms: float | None
    nodes: list[NodeView]
    node_count: int
    failures: int
    anomalies: list[str]
    edges: NotRequired[list[GraphEdgeView]]
    """The edges this run reveals (predecessors, start order, loops): the Graph tab draws them
    where the system publishes no graph."""
    reasoning: NotRequired[ReasoningView | None]
    """The answer's own thinking (a `<think>` block at its start), shown above the answer."""


class Variable(TypedDict):
    label: str
    variable: str
    type: Literal["string", "number"]
    required: NotRequired[bool]
    maxLength: NotRequired[int | None]
    hidden: NotRequired[bool]


class DemoAppView(TypedDict):
    slug: str
    name: str


class Capabilities(TypedDict):
    """What the connected system can do: the view shows only controls that work."""

    token_streaming: bool
    stop: Literal["server", "client"]
    """server: Stop cancels the run; client: Stop only stops listening (the run may finish)."""
    branching: bool
    files: bool
    regenerate_reason: NotRequired[str]
    """Why regenerate/edit are missing, shown in the view when branching is False."""
    conversations: NotRequired[bool]
    """False: one conversation only (no list to reopen)."""
    new_conversation: NotRequired[Literal["new", "clear"]]
    """clear: "New chat" deletes the one conversation's history (after a confirmation)."""
    stop_note: NotRequired[str]
    """What a stopped turn says on this system (default: the generic note for its `stop`)."""
    feedback: NotRequired[bool]
    """Answers can be rated like/dislike (with a comment)."""
    feedback_reason: NotRequired[str]
    """Why they cannot, where the system takes no rating."""


class HeaderView(TypedDict, total=False):
    app_name: str
    app_version: str
    app_emoji: str
    app_color: str | None
    description: str | None
    system: str
    system_label: str
    """The system's name as the header's chip shows it; empty: no chip (the home system)."""
    offline: bool
    demo_apps: list[DemoAppView]
    demo: str | None
    user_id: str
    conversation_id: str | None
    variables: list[Variable]
    inputs: dict[str, Any]
    examples: list[str]
    """Example questions for the empty state."""
    capabilities: Capabilities
    graph: GraphStructureView | None
    """The published workflow graph; None: the Graph tab infers it from each run."""
    read_only: str
    """Set only in an exported file (_export.py): the note it shows; the view is read-only."""
    travel: str
    """A replayed reply (ChatWidget.replay) the view opens in time travel, at its start."""
    takes_inputs: bool
    """A run takes inputs, not a question (a Dify workflow app): the inputs form is the message."""


class LiveView(TypedDict, total=False):
    key: str
    parent_id: str | None
    query: str
    """Cut at QUERY_CAP characters (see query_chars)."""
    query_chars: int
    file: FileView | None
    message_id: str | None
    status: Status


class NoticeView(TypedDict, total=False):
    code: str
    message: str
    draft: str


class ConversationView(TypedDict):
    id: str
    name: str
    updated_at: str | None


class AttachmentView(TypedDict, total=False):
    filename: str
    size: int
    mime_type: str


TRAITS: dict[str, Any] = {
    "protocol": int,
    "header": HeaderView,
    "transcript": TranscriptView,
    "timelines": dict[str, TimelineView],
    "live": LiveView,
    "notice": NoticeView,
    "conversations": list[ConversationView],
    "attachment": AttachmentView,
    "focus_id": str,
    "compact": bool,
}
"""Every synced trait of ChatWidget and its shape (the Model type of the front end)."""

# -- kernel -> browser, unasked -----------------------------------------------------------------


class LiveMessage(TypedDict):
    """A delta of the streaming reply: text to append (or the whole text to reset to)."""

    type: Literal["live"]
    key: str
    seq: int
    status: Status
    append: NotRequired[str]
    reset: NotRequired[str]
    message_id: NotRequired[str | None]
    timeline: NotRequired[TimelineView]


class LiveSnapshot(TypedDict):
    """The streaming reply so far, for a view that (re)appears mid-stream."""

    type: Literal["live_snapshot"]
    key: str
    seq: int
    text: str
    status: Status
    message_id: str | None
    timeline: TimelineView


# -- browser -> kernel: commands and their replies -----------------------------------------------


class Command(TypedDict):
    type: Literal["command"]
    id: int
    name: str
    args: dict[str, Any]


class CommandReply(TypedDict):
    type: Literal["reply"]
    id: int
    ok: bool
    result: NotRequired[Any]
    error: NotRequired[ErrorView]


class NoArgs(TypedDict):
    pass


class SendArgs(TypedDict):
    text: str


class MessageArgs(TypedDict):
    message_id: str


class EditArgs(TypedDict):
    message_id: str
    text: str


class OpenArgs(TypedDict):
    id: str


class DemoArgs(TypedDict):
    slug: str


class InputsArgs(TypedDict):
    inputs: dict[str, str]


class AttachArgs(TypedDict):
    """The file's bytes travel as the message's one binary buffer."""

    filename: str
    mime_type: str | None


class EventsArgs(TypedDict):
    message_id: str | None
    event_filter: str | None
    search: str | None
    offset: int
    limit: int


class DetailArgs(TypedDict):
    message_id: str
    key: str


class EventRow(TypedDict):
    message_id: str | None
    seq: int
    offset_ms: float | None
    event: str
    data: str


class EventsPage(TypedDict):
    rows: list[EventRow]
    total: int
    offset: int
    types: list[str]
    messages: list[str]


class AnswerResult(TypedDict):
    message_id: str
    answer: str
    query: str
    """The whole question ("" for a file): the trait holds it cut at QUERY_CAP, an edit needs all of it."""


class DetailResult(TypedDict):
    title: str
    sections: list[tuple[str, str | None]]


class RespondArgs(TypedDict):
    """An answer to the form a turn waits on: the kernel sends it (the token never leaves it)."""

    message_id: str
    action: str
    inputs: dict[str, str]


class FeedbackArgs(TypedDict):
    """Rate an answer: like, dislike, or null to take the rating back; a comment beside it."""

    message_id: str
    rating: Literal["like", "dislike"] | None
    comment: str | None


class CompareArgs(TypedDict):
    a: str
    b: str


class SegmentView(TypedDict):
    """A piece of an answer in a word diff: in both, only in a (del), only in b (add)."""

    op: Literal["same", "del", "add"]
    text: str


class CompareRowView(TypedDict):
    """One node run of either reply, aligned with the same run in the other."""

    node_name: str
    node_type: str
    ran_in: Literal["both", "a only", "b only"]
    status_a: str | None
    status_b: str | None
    duration_ms_a: float | None
    duration_ms_b: float | None
    output_differs: bool
    output_a: str | None
    output_b: str | None


class CompareResult(TypedDict):
    answer_a: list[SegmentView]
    answer_b: list[SegmentView]
    truncated: bool
    """The answers were longer than the diff reads word by word: their tails are compared whole."""
    status_a: str | None
    status_b: str | None
    total_ms_a: float | None
    total_ms_b: float | None
    rows: list[CompareRowView]


class TapeArgs(TypedDict):
    message_id: str
    """A settled turn's id, or the live reply's key."""
    since: int
    """Events the browser already has (0: from the start); a live reply's tape is asked again."""
    patches: int
    """Patches the browser already has (a streaming reply's end may patch an event it has)."""


class TapePatch(TypedDict):
    """What event `e` (0-based) changed, as a live message says it: text appended or replaced,
    the node runs that changed (index, new view), the timeline's other fields that changed."""

    e: int
    append: NotRequired[str]
    reset: NotRequired[str]
    nodes: NotRequired[list[tuple[int, NodeView]]]
    summary: NotRequired[dict[str, Any]]


class TapeView(TypedDict):
    """A reply's run as patches, one fold of its event log (tape.py): the browser replays them,
    with checkpoints, to show any moment. Events without a visible change have no patch."""

    message_id: str | None
    since: int
    events: int
    """Events covered so far (since + len(offsets_ms))."""
    offsets_ms: list[float]
    names: list[str]
    patch_since: int
    patches: list[TapePatch]
    done: bool
    """The reply ended and every event is in: no more to ask for."""
    cut: str | None
    """Why the tape stops short of the run, said plainly (too many events or characters)."""


class ExportResult(TypedDict):
    """Where the widget's Export button saved the conversation (the kernel's working directory)."""

    path: str
    bytes: int
    left_out: int
    """Earlier turns not in the file (a long conversation keeps its newest turns)."""


COMMANDS: dict[str, tuple[Any, Any]] = {
    "hello": (NoArgs, Union[LiveSnapshot, None]),  # noqa: UP007  # read by the TS generator
    "send": (SendArgs, None),
    "stop": (NoArgs, None),
    "regenerate": (MessageArgs, None),
    "edit": (EditArgs, None),
    "select": (MessageArgs, None),
    "new_conversation": (NoArgs, None),
    "open_conversation": (OpenArgs, None),
    "pick_demo": (DemoArgs, None),
    "set_inputs": (InputsArgs, None),
    "run": (InputsArgs, None),
    "attach": (AttachArgs, None),
    "detach": (NoArgs, None),
    "load_older": (NoArgs, None),
    "answer": (MessageArgs, AnswerResult),
    "detail": (DetailArgs, DetailResult),
    "events": (EventsArgs, EventsPage),
    "compare": (CompareArgs, CompareResult),
    "tape": (TapeArgs, TapeView),
    "export_html": (NoArgs, ExportResult),
    "respond": (RespondArgs, None),
    "feedback": (FeedbackArgs, None),
}
"""Every command the browser may send: name -> (args shape, result shape)."""


# -- EvalWidget: the results table of evaluate() ------------------------------------------------

class EvalRowView(TypedDict):
    """One row of the results table (text cut short: the DataFrame has it whole)."""

    row: int
    """Its place in the table (what a click selects): the input row, or one ask of it with repeats."""
    label: str
    """What the table shows for it: the input row's number, and which repeat ("3 · 2/5")."""
    query: str
    status: str
    answer: str
    error: str | None
    failed_node: str | None
    total_s: float | None
    scores: dict[str, float | bool | None]


class EvalProgressView(TypedDict):
    total: int
    done: int
    failed: int
    running: int
    stopped: int
    rows_per_s: float
    elapsed_s: float
    eta_s: float | None
    finished: bool
    error: str | None
    """Why the evaluation itself failed (not a row), which ended it; null while it is well."""
    waiting: str | None
    """Why no row is asked yet (another evaluation is writing the same cache); null otherwise."""
    repeats: NotRequired[int]
    """With repeats, `done` and `total` count asks; these count input rows (done: every repeat ended)."""
    rows_done: NotRequired[int]
    rows_total: NotRequired[int]


class EvalTurnView(TypedDict):
    query: str
    answer: str
    status: str
    error: str | None


class EvalAskView(TypedDict):
    """One of a repeated row's asks, beside the one open: a click opens it."""

    row: int
    """Its place in the table (what a click selects)."""
    label: str
    status: str
    passed: bool | None
    """Every score that is a verdict passed (null: none is, or it was not scored)."""


class EvalDetailView(TypedDict, total=False):
    """The selected row's run: its turns and their timelines."""

    row: int
    label: str
    turns: list[EvalTurnView]
    timelines: list[TimelineView]
    tokens: bool
    """Whether the system streams tokens (the timeline says "first token" or "answer")."""
    asks: list[EvalAskView]
    """With repeats: every ask of the open row (the open one among them), each to open."""


EVAL_TRAITS: dict[str, Any] = {
    "protocol": int,
    "system": str,
    "progress": EvalProgressView,
    "rows": list[EvalRowView],
    "hidden_rows": int,
    "score_columns": list[str],
    "selected": int,
    "detail": EvalDetailView,
}
"""Every synced trait of EvalWidget. The browser sets `selected` (a row, -1 for none) and
sends `{"type": "stop"}`; nothing else."""


# -- ComparisonWidget: compare(a, b), its rows opening both runs side by side -------------------

class ComparisonRowView(TypedDict):
    """One paired row of a comparison's table (text cut short: `comparison.df` has it whole)."""

    row: int
    """Its place in the comparison's table (`comparison.df`'s index): what a click selects."""
    label: str
    """The input row's number, and which repeat ("3 · 2/5")."""
    query: str
    flip: Literal["regressed", "improved", ""]
    status_a: str
    status_b: str
    answer_changed: bool
    scores_a: dict[str, float | bool | None]
    scores_b: dict[str, float | bool | None]


class ComparisonPairView(TypedDict, total=False):
    """The selected row's two runs side by side: the answers' word diff and the node runs
    aligned, as the chat's Compare tab draws them; each run's error and scores."""

    row: int
    label: str
    query: str
    flip: str
    compare: CompareResult
    error_a: str | None
    error_b: str | None
    scores: list[tuple[str, float | bool | None, float | bool | None]]
    """(score, A's value, B's value) for every score of either run."""


COMPARISON_TRAITS: dict[str, Any] = {
    "protocol": int,
    "title": str,
    "verdict": list[str],
    "rows": list[ComparisonRowView],
    "hidden_rows": int,
    "score_columns": list[str],
    "selected": int,
    "pair": ComparisonPairView,
}
"""Every synced trait of ComparisonWidget. The browser sets `selected` (a row of the table,
-1 for none); nothing else."""


# -- runtime checking (tests and the contract between Python and the TS types) -----------------

def check(value: Any, shape: Any, where: str = "value") -> None:
    """Raise TypeError when `value` does not have `shape` (a TypedDict, a typing form, a type).
    Iterative over containers' items would be nicer; shapes here are a few levels deep."""
    origin = get_origin(shape)
    if shape is Any:
        return
    if shape is None or shape is type(None):
        if value is not None:
            raise TypeError(f"{where}: expected null, got {value!r:.80}")
        return
    if origin is Literal:
        if value not in get_args(shape):
            raise TypeError(f"{where}: {value!r:.80} is not one of {get_args(shape)}")
        return
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(shape):
            try:
                check(value, option, where)
                return
            except TypeError as exc:
                errors.append(str(exc))
        raise TypeError(" / ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = get_args(shape)
        for i, element in enumerate(value):
            check(element, item, f"{where}[{i}]")
        return
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{where}: expected a pair, got {type(value).__name__}")
        for i, (element, item) in enumerate(zip(value, get_args(shape), strict=True)):
            check(element, item, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        _, item = get_args(shape)
        for key, element in value.items():
            check(element, item, f"{where}.{key}")
        return
    if is_typeddict(shape):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a {shape.__name__} object, got {type(value).__name__}")
        hints = get_type_hints(shape)
        missing = shape.__required_keys__ - set(value)
        if missing:
            raise TypeError(f"{where}: {shape.__name__} lacks {sorted(missing)}")
        unknown = set(value) - set(hints)
        if unknown:
            raise TypeError(f"{where}: {shape.__name__} has unknown keys {sorted(unknown)}")
        for key, element in value.items():
            check(element, _required(hints[key]), f"{where}.{key}")
        return
    if shape is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{where}: expected a number, got {value!r:.80}")
        return
    if shape is int and isinstance(value, bool):
        raise TypeError(f"{where}: expected an int, got a bool")
    if isinstance(shape, type) and not isinstance(value, shape):
        raise TypeError(f"{where}: expected {shape.__name__}, got {type(value).__name__}")


def _required(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is NotRequired else hint
