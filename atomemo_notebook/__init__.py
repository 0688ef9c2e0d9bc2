"""atomemo_notebook: talk to, watch and debug Atomemo chat workflows from Jupyter."""

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
from .model.chat import LEAF, AsyncChat, Chat
from .model.records import (
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
from .model.replay import EventLog, load_events, replay, replay_async
from .model.reply import EventRecord, ExecutionSpan, NodeSpan, Reply, ToolSpan
from .model.tree import MessageTree, TreeMessage
from .protocol.atomemo.events import (
    ChatMessage,
    Event,
    ExecutionFinished,
    ExecutionStarted,
    Heartbeat,
    MalformedFrame,
    MessageCreated,
    NodeFinished,
    NodeStarted,
    StreamRecovered,
    ToolCallStarted,
    ToolResponse,
)
from .protocol.atomemo.models import App, AppVersion, Conversation, FileRef, Message, UploadToken
from .protocol.backend import AppInfo
from .protocol.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    AppOrTriggerNotFoundError,
    AtomemoError,
    AuthenticationError,
    BadRequestError,
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
    TriggerInputsError,
    UnprocessableEntityError,
    UnresumableStreamError,
)
from .protocol.limits import Limits
from .protocol.neutral import Capabilities
from .session.connect import connect
from .transport.client import AsyncClient, Client
from .transport.dify import AsyncDifyClient, DifyClient
from .transport.odyssey import AsyncOdysseyClient, OdysseyClient
from .transport.pipelit import AsyncPipelitClient, PipelitClient
from .transport.streams import AsyncEventStream, EventStream
from .views.widget import ChatWidget

__all__ = [
    "EVENT_COLUMNS",
    "HISTORY_COLUMNS",
    "LEAF",
    "SOURCE_COLUMNS",
    "TIMELINE_COLUMNS",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "App",
    "AppInfo",
    "AppOrTriggerNotFoundError",
    "AppVersion",
    "AsyncChat",
    "AsyncClient",
    "AsyncDifyClient",
    "AsyncEventStream",
    "AsyncOdysseyClient",
    "AsyncPipelitClient",
    "AtomemoError",
    "AuthenticationError",
    "BadRequestError",
    "Capabilities",
    "Chat",
    "ChatMessage",
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
    "EventRecord",
    "EventStream",
    "ExecutionFailedError",
    "ExecutionFinished",
    "ExecutionSpan",
    "ExecutionStarted",
    "FileRef",
    "Heartbeat",
    "InternalServerError",
    "LimitExceededError",
    "Limits",
    "MalformedFrame",
    "Message",
    "MessageCreated",
    "MessageNotFoundError",
    "MessageTree",
    "MissingAPIKeyError",
    "NodeFinished",
    "NodeSpan",
    "NodeStarted",
    "NotFoundError",
    "OdysseyClient",
    "ParentNotFoundError",
    "PermissionDeniedError",
    "PipelitClient",
    "RateLimitError",
    "Reply",
    "StreamRecovered",
    "ToolCallStarted",
    "ToolResponse",
    "ToolSpan",
    "TreeMessage",
    "TriggerInputsError",
    "UnprocessableEntityError",
    "UnresumableStreamError",
    "UploadToken",
    "__version__",
    "compare",
    "compare_nodes",
    "connect",
    "contains",
    "demo_dataset",
    "evaluate",
    "event_records",
    "exact",
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
]


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext atomemo_notebook` registers the %%atomemo cell magic."""
    from .views.magic import load_ipython_extension as load

    load(ipython)
