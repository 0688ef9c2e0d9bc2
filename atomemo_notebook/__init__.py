"""atomemo_notebook: talk to, watch and debug chat workflows (Atomemo, Dify, Pipelit, OdysseyAI)
from Jupyter.

`__all__` is the public surface, pinned by tests/test_client.py. Other names stay importable from
their modules: Atomemo's own event and model classes from `protocol.atomemo.events` and
`protocol.atomemo.models`, a reply's parts from `model.reply`, the message tree from `model.tree`."""

from ._version import __version__
from .evaluation import (
    EvalResults,
    compare,
    compare_nodes,
    contains,
    demo_dataset,
    evaluate,
    exact,
    latency_under,
    load_evaluation,
    regex,
)
from .model._records import (
    EVENT_COLUMNS,
    HISTORY_COLUMNS,
    SOURCE_COLUMNS,
    TIMELINE_COLUMNS,
    event_records,
    history_records,
    source_records,
    timeline_records,
    to_dataframe,
)
from .model._replay import EventLog, load_events, replay, replay_async
from .model._spans import export_spans, to_spans
from .model.chat import AsyncChat, Chat
from .model.reply import NodeSpan, Reply, ToolSpan
from .protocol._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    AppOrTriggerNotFoundError,
    AuthenticationError,
    BadRequestError,
    ChatAPIError,
    ConflictError,
    ConversationMessageMismatchError,
    ConversationNotFoundError,
    ConversationUserIdMismatchError,
    ExecutionFailedError,
    InternalServerError,
    LimitExceededError,
    MessageNotFoundError,
    MissingAPIKeyError,
    NotFoundError,
    ParentNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SpanExportError,
    TriggerInputsError,
    UnprocessableEntityError,
    UnresumableStreamError,
)
from .protocol._errors import AtomemoError as AtomemoError  # ChatAPIError's first name, kept for `except`
from .protocol._limits import Limits
from .protocol._neutral import Capabilities
from .protocol._wire import Conversation, Event, FileRef, MalformedFrame, Message
from .session._connect import connect
from .transport._client import AsyncClient, Client
from .transport._dify import AsyncDifyClient, DifyClient
from .transport._odyssey import AsyncOdysseyClient, OdysseyClient
from .transport._pipelit import AsyncPipelitClient, PipelitClient
from .transport._streams import AsyncEventStream, EventStream
from .views._widget import ChatWidget

__all__ = [
    "EVENT_COLUMNS",
    "HISTORY_COLUMNS",
    "SOURCE_COLUMNS",
    "TIMELINE_COLUMNS",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AppOrTriggerNotFoundError",
    "AsyncChat",
    "AsyncClient",
    "AsyncDifyClient",
    "AsyncEventStream",
    "AsyncOdysseyClient",
    "AsyncPipelitClient",
    "AuthenticationError",
    "BadRequestError",
    "Capabilities",
    "Chat",
    "ChatAPIError",
    "ChatWidget",
    "Client",
    "ConflictError",
    "Conversation",
    "ConversationMessageMismatchError",
    "ConversationNotFoundError",
    "ConversationUserIdMismatchError",
    "DifyClient",
    "EvalResults",
    "Event",
    "EventLog",
    "EventStream",
    "ExecutionFailedError",
    "FileRef",
    "InternalServerError",
    "LimitExceededError",
    "Limits",
    "MalformedFrame",
    "Message",
    "MessageNotFoundError",
    "MissingAPIKeyError",
    "NodeSpan",
    "NotFoundError",
    "OdysseyClient",
    "ParentNotFoundError",
    "PermissionDeniedError",
    "PipelitClient",
    "RateLimitError",
    "Reply",
    "SpanExportError",
    "ToolSpan",
    "TriggerInputsError",
    "UnprocessableEntityError",
    "UnresumableStreamError",
    "__version__",
    "compare",
    "compare_nodes",
    "connect",
    "contains",
    "demo_dataset",
    "evaluate",
    "event_records",
    "exact",
    "export_spans",
    "history_records",
    "latency_under",
    "load_evaluation",
    "load_events",
    "regex",
    "replay",
    "replay_async",
    "source_records",
    "timeline_records",
    "to_dataframe",
    "to_spans",
]

def load_ipython_extension(ipython: object) -> None:
    """`%load_ext atomemo_notebook` registers the %%atomemo cell magic."""
    from .views._magic import load_ipython_extension as load

    load(ipython)
