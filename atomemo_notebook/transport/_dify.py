"""Dify's service API over the shared I/O: a sync and an async client, and the stream policy
of a system that cannot resume: a broken stream is finished from the stored message, or ends
clearly failed, never silently short."""

from __future__ import annotations

import os
from typing import Any

import httpx

from ..protocol._call import Call, Open
from ..protocol._errors import APIConnectionError, APIError, APITimeoutError
from ..protocol._wire import Event, Message
from ..protocol.dify import _calls as calls
from ..protocol.dify import _forms as forms
from ..protocol.dify._adapter import MessageIds
from ..protocol.dify._dialect import DIFY
from ..protocol.dify.events import Name
from ._client import AsyncHttp, SyncHttp
from ._resume import Step
from ._retry import backoff_delay
from ._streams import AsyncEventStream, EventStream

__all__ = ["AsyncDifyClient", "DifyClient", "DifyStreamState"]

Upload = str | os.PathLike[str] | bytes
RECOVERY_TRIES = 8  # the stored message may lag the stream's end: ask a few times, then fail


RESUME_TRIES = 5  # reopenings of a run's event stream before the stored message is asked instead
SEEN_CAP = 100_000  # events remembered to drop their replay after a resume (a run's node events)
# Events a resumed run's state snapshot sends again: each is dropped when already seen.
REPLAYED = frozenset({Name.WORKFLOW_STARTED, Name.NODE_STARTED, Name.NODE_FINISHED, Name.NODE_RETRY,
                      Name.ITERATION_STARTED, Name.ITERATION_NEXT, Name.ITERATION_COMPLETED, Name.LOOP_STARTED,
                      Name.LOOP_NEXT, Name.LOOP_COMPLETED, Name.AGENT_LOG, Name.HUMAN_INPUT_REQUIRED,
                      Name.HUMAN_INPUT_FORM_FILLED, Name.WORKFLOW_PAUSED, Name.MESSAGE_END})


def _replay_key(name: str, frame: dict[str, Any]) -> tuple[Any, ...]:
    data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
    assert isinstance(data, dict)
    return (name, str(frame.get("workflow_run_id") or ""), str(data.get("id") or data.get("form_id") or ""),
            str(data.get("index", "")), str(data.get("retry_index", "")), str(data.get("status", "")),
            str(data.get("reason", "")), str(data.get("node_id", "")))


class DifyStreamState:
    """What a Dify stream has seen, and what to do when it breaks: where the server offers a
    run's event stream (`GET /workflow/{run_id}/events`, 2026), resume there from the run's
    state snapshot, dropping what was seen already; else (or refused) recover from the stored
    message, never silently short.

    `asked_in`: the conversation the question was asked in. Dify 1.13 answers a question into
    a conversation it does not know with 200, one `ping`, then silence for 300 s: so until the
    message is named, silence is waited for only `start_timeout` seconds, and then the
    conversation is looked up, to say so (ConversationNotFoundError) or why we gave up."""

    def __init__(self, user: str, asked_in: str | None = None, start_timeout: float | None = None) -> None:
        self.user = user
        self._ids = MessageIds()  # the message this stream answers; another's events change nothing here
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.task_id: str | None = None
        self.finished = False
        # The run ended (finished, failed, stopped or paused): nothing the reply needs follows, and
        # Dify holds the connection ~1 s longer, so the stream stops reading here.
        self.final = False
        self.resumes = 0  # recovery attempts
        self.recovered = False
        self.asked_in = asked_in
        self.start_timeout = start_timeout if asked_in else None
        self._checking = False  # the recovery call is the conversation's lookup, not the message's
        self._workflow = False
        # A workflow app's run: it names no message and no conversation, only its run (and task),
        # so a break resumes or recovers by the run: its events again, else its record's outputs.
        self.workflow_app = False
        self._text: list[str] = []
        self.run_id: str | None = None
        self.reopens = 0  # resumes through the run's event stream
        self.resume_offered = True  # until the server says it has no run event stream
        self._seen: set[tuple[Any, ...]] = set()

    @property
    def idle_timeout(self) -> float | None:
        """The silence allowed now, when shorter than the client's stream_idle_timeout."""
        return self.start_timeout if self.message_id is None else None

    def accept(self, event: Event) -> bool:
        frame = event.data or {}
        if self._ids.claim(frame) is not None:
            return True  # passed on for the translator to report; it changes nothing here
        if self.message_id is None and self._ids.message_id is not None:
            task_id = frame.get("task_id")
            self.task_id = task_id if isinstance(task_id, str) and task_id else None
        self.message_id, self.conversation_id = self._ids.message_id, self._ids.conversation_id
        name = event.event
        if name in REPLAYED:
            key = _replay_key(name, frame)
            if key in self._seen and self.reopens:
                return False  # sent again by a resumed stream's state snapshot: folded already
            if len(self._seen) < SEEN_CAP:
                self._seen.add(key)
        if name in (Name.MESSAGE, Name.AGENT_MESSAGE) and isinstance(frame.get("answer"), str):
            self._text.append(frame["answer"])
        elif name == Name.MESSAGE_REPLACE and isinstance(frame.get("answer", ""), str | None):
            self._text = [frame.get("answer") or ""]
        elif name == Name.WORKFLOW_STARTED:
            self._workflow = True
            run_id = frame.get("workflow_run_id")
            self.run_id = run_id if isinstance(run_id, str) and run_id else self.run_id
            if self.message_id is None and not frame.get("conversation_id") and self.run_id:
                self.workflow_app = True
                task_id = frame.get("task_id")
                self.task_id = task_id if isinstance(task_id, str) and task_id else self.task_id
        # A chat app without a workflow ends at message_end; an advanced-chat one after it, or
        # where it pauses for a person (the stream ends there, the run does not).
        ending = (Name.WORKFLOW_FINISHED, Name.WORKFLOW_PAUSED, Name.ERROR) if self._workflow else (
            Name.WORKFLOW_FINISHED, Name.WORKFLOW_PAUSED, Name.ERROR, Name.MESSAGE_END)
        if name in ending:
            self.finished = self.final = True
        return True

    def on_break(self, cause: BaseException | None) -> Step:
        if self.message_id is None and self.asked_in and (cause is None or isinstance(cause, APITimeoutError)) \
                and not self._checking:
            self._checking = True  # silence before the message was named: is the conversation there?
            return "recover"
        if not self.workflow_app and (self.message_id is None or self.conversation_id is None):
            what = "the stream ended" if cause is None else f"the connection failed ({cause!r})"
            raise APIConnectionError(f"{what} before Dify named the message (or a workflow app's run); it was "
                                     "not resent, since that could run it twice")
        if self.run_id and self.resume_offered and self.reopens < RESUME_TRIES:
            self.reopens += 1
            self.resumes += 1
            return "resume"
        if self.resumes >= RECOVERY_TRIES + self.reopens:
            what = f"workflow run {self.run_id}" if self.workflow_app else f"message {self.message_id}"
            raise APIConnectionError(
                f"the stream of {what} broke and could not be resumed; its stored "
                f"{'record' if self.workflow_app else 'answer'} did not complete after {self.resumes} looks")
        self.resumes += 1
        return "recover"

    def resume_delay(self) -> float:
        return 0.0 if self.resumes <= 1 else backoff_delay(self.resumes - 1)

    def resume_call(self) -> Call[Any]:
        """The run's events from its state snapshot on: what was seen is dropped in accept()."""
        return forms.workflow_events(str(self.run_id), self.user, snapshot=True, continue_on_pause=False)

    def resume_refused(self, error: BaseException) -> None:
        """The server has no run event stream (Dify 1.13.2's service API): recover from now on."""
        self.resume_offered = False

    def recovery_call(self) -> Call[Any]:
        if self.workflow_app:  # the run's record: its status, and its outputs once it has ended
            return calls.workflow_run(str(self.run_id))
        if self._checking:  # a 404 here is the answer: ConversationNotFoundError, raised as is
            return calls.messages(str(self.asked_in), self.user, limit=1)
        return calls.messages(str(self.conversation_id), self.user, limit=100)

    def recover(self, answer: Any) -> list[Event] | None:
        """The stored message, once it has its answer (or its error): the text's missing tail
        and a marker; None while it has not finished (ask again)."""
        if self._checking:
            raise APIConnectionError(
                f"Dify accepted the question into conversation {self.asked_in} but named no message "
                f"(silent for start_timeout={self.start_timeout:g} s, or it closed the stream); the "
                "conversation exists. It was not resent, since it may still be answered: history() "
                "shows it if it is")
        if self.workflow_app:
            return self._recover_run(answer)
        items, _ = answer
        message = next((m for m in items if isinstance(m, Message) and m.id == self.message_id), None)
        if message is None or (not message.answer and message.status != "failed"):
            return None
        self.recovered = self.finished = True
        seen, stored = "".join(self._text), message.answer or ""
        events: list[Event] = []
        if len(stored) > len(seen) and stored.startswith(seen):
            events.append(Event(Name.MESSAGE, {"event": Name.MESSAGE, "answer": stored[len(seen):]}))
        events.append(Event(Name.RECOVERED, {"event": Name.RECOVERED, "status": message.status,
                                             "answer": stored}))
        return events


    def _recover_run(self, record: dict[str, Any]) -> list[Event] | None:
        """A workflow app's run record, once the run has ended: its end as the stream would have
        said it (outputs, status, error), then the marker; None while it runs (ask again)."""
        status = record.get("status")
        if status in (None, "running"):
            return None
        self.recovered = self.finished = True
        data = {key: record.get(key) for key in ("id", "workflow_id", "status", "outputs", "error", "elapsed_time",
                                                 "total_tokens", "total_steps", "created_at", "finished_at")}
        data["id"] = data["id"] or self.run_id
        end = {"event": Name.WORKFLOW_FINISHED, "workflow_run_id": self.run_id, "task_id": self.task_id,
               "data": data}
        # No answer to compare: a workflow app's text is its outputs, which the end above carries.
        return [Event(Name.WORKFLOW_FINISHED, end),
                Event(Name.RECOVERED, {"event": Name.RECOVERED, "status": str(status), "answer": None})]


DEFAULT_START_TIMEOUT = 20.0  # seconds of silence, before a message is named, that trigger the lookup
FLASK_HINT = " You have requested this URI ["  # Flask's "did you mean" suffix on Dify's 404 messages


class _Dify:
    """What Dify's two clients share beyond the I/O: the base URL's two forms, the time a
    question into a known conversation may stay silent, and Dify's error texts."""

    DIALECT = DIFY
    base_url: str
    start_timeout: float

    # Cooperative: the mixin comes first in each client's bases, so super() is SyncHttp or AsyncHttp.
    def __init__(self, api_key: str | None = None, *, start_timeout: float = DEFAULT_START_TIMEOUT,
                 **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)  # type: ignore[call-arg]
        self._dify_setup(start_timeout)

    def options(self) -> dict[str, Any]:
        base: dict[str, Any] = super().options()  # type: ignore[misc]
        return base | {"start_timeout": self.start_timeout}

    def _error(self, response: httpx.Response, body: str) -> APIError:
        error: APIError = super()._error(response, body)  # type: ignore[misc]
        return self._dify_error(error, response)

    def _dify_setup(self, start_timeout: float) -> None:
        if not (isinstance(start_timeout, int | float) and 0 < start_timeout < float("inf")):
            raise ValueError(f"start_timeout must be a positive number of seconds, got {start_timeout!r}")
        self.start_timeout = float(start_timeout)

    def _state(self, user: str, conversation_id: str | None) -> DifyStreamState:
        return DifyStreamState(user, conversation_id or None, self.start_timeout)

    def _policy(self, spec: Open) -> DifyStreamState:
        return self._state(spec.user or "", spec.conversation_id)

    def _dify_error(self, error: APIError, response: httpx.Response) -> APIError:
        if FLASK_HINT in error.message:  # keep Dify's words, not Flask's route suggestions
            trimmed = error.message.split(FLASK_HINT)[0]
            return type(error)(trimmed, status_code=error.status_code, code=error.code, body=error.body,
                               request_id=error.request_id)
        return error


class DifyClient(_Dify, SyncHttp, speaks=True):
    """Dify's service API, synchronous. `DifyClient()` reads DIFY_API_KEY and DIFY_BASE_URL;
    the base URL may be the server (`https://api.dify.ai`) or its service API (`.../v1`)."""

    def chat_messages(self, *, query: str, user: str, inputs: dict[str, Any] | None = None,
                      conversation_id: str | None = None, files: list[dict[str, Any]] | None = None,
                      auto_generate_name: bool = True) -> EventStream:
        call = calls.chat_messages(query=query, user=user, inputs=inputs, conversation_id=conversation_id,
                                   files=files, auto_generate_name=auto_generate_name)
        return self._stream(call, self._state(user, conversation_id))

    def open_stream(self, spec: Open) -> EventStream:
        return self._stream(spec.call, self._policy(spec))

    def run_workflow(self, *, inputs: dict[str, Any], user: str) -> EventStream:
        """A workflow app's run, streamed (`text_chunk` events carry its End node's text)."""
        return self._stream(calls.run_workflow(inputs=inputs, user=user), self._state(user, None))

    def workflow_run(self, run_id: str) -> dict[str, Any]:
        """A run's record (a chatflow's too): its status after a pause, its outputs."""
        return self._call(calls.workflow_run(run_id))

    def stop_workflow(self, task_id: str, user: str) -> dict[str, Any]:
        return self._call(calls.stop_workflow(task_id, user))

    def run_workflow_blocking(self, *, inputs: dict[str, Any], user: str,
                              timeout: float | None = None) -> dict[str, Any]:
        """A workflow app's run, its answer once it ended: {task_id, workflow_run_id, data: {status, outputs...}}."""
        call = calls.run_workflow(inputs=inputs, user=user, streaming=False)
        return self._call(call if timeout is None else _with_timeout(call, timeout))

    def workflow_logs(self, *, page: int = 1, limit: int = 20, status: str | None = None,
                      keyword: str | None = None) -> calls.Page:
        """A workflow app's runs, newest first, and whether there are more pages."""
        return self._call(calls.workflow_logs(page=page, limit=limit, status=status, keyword=keyword))

    def chat_blocking(self, *, query: str, user: str, inputs: dict[str, Any] | None = None,
                      conversation_id: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        call = calls.chat_messages(query=query, user=user, inputs=inputs, conversation_id=conversation_id,
                                   streaming=False)
        return self._call(call if timeout is None else _with_timeout(call, timeout))

    def stop(self, task_id: str, user: str) -> dict[str, Any]:
        return self._call(calls.stop(task_id, user))

    def conversations(self, user: str, *, last_id: str | None = None, limit: int = 20) -> calls.Page:
        return self._call(calls.conversations(user, last_id=last_id, limit=limit))

    def messages(self, conversation_id: str, user: str, *, first_id: str | None = None,
                 limit: int = 100) -> calls.Page:
        return self._call(calls.messages(conversation_id, user, first_id=first_id, limit=limit))

    def rename_conversation(self, conversation_id: str, user: str, *,
                            name: str | None = None) -> dict[str, Any]:
        return self._call(calls.rename_conversation(conversation_id, user, name=name))

    def delete_conversation(self, conversation_id: str, user: str) -> None:
        self._call(calls.delete_conversation(conversation_id, user))

    def upload(self, path_or_bytes: Upload, user: str, *, filename: str | None = None,
               mime_type: str | None = None) -> dict[str, Any]:
        return self._call(calls.upload(path_or_bytes, user, filename=filename, mime_type=mime_type))

    def parameters(self) -> dict[str, Any]:
        return self._call(calls.parameters())

    def info(self) -> dict[str, Any]:
        return self._call(calls.info())

    def suggested(self, message_id: str, user: str) -> list[str]:
        return self._call(calls.suggested(message_id, user))


class AsyncDifyClient(_Dify, AsyncHttp, speaks=True):
    """`DifyClient`, awaited."""

    async def chat_messages(self, *, query: str, user: str, inputs: dict[str, Any] | None = None,
                            conversation_id: str | None = None, files: list[dict[str, Any]] | None = None,
                            auto_generate_name: bool = True) -> AsyncEventStream:
        call = calls.chat_messages(query=query, user=user, inputs=inputs, conversation_id=conversation_id,
                                   files=files, auto_generate_name=auto_generate_name)
        return await self._stream(call, self._state(user, conversation_id))

    async def open_stream(self, spec: Open) -> AsyncEventStream:
        return await self._stream(spec.call, self._policy(spec))

    async def run_workflow(self, *, inputs: dict[str, Any], user: str) -> AsyncEventStream:
        return await self._stream(calls.run_workflow(inputs=inputs, user=user), self._state(user, None))

    async def workflow_run(self, run_id: str) -> dict[str, Any]:
        return await self._call(calls.workflow_run(run_id))

    async def stop_workflow(self, task_id: str, user: str) -> dict[str, Any]:
        return await self._call(calls.stop_workflow(task_id, user))

    async def run_workflow_blocking(self, *, inputs: dict[str, Any], user: str,
                                    timeout: float | None = None) -> dict[str, Any]:
        call = calls.run_workflow(inputs=inputs, user=user, streaming=False)
        return await self._call(call if timeout is None else _with_timeout(call, timeout))

    async def workflow_logs(self, *, page: int = 1, limit: int = 20, status: str | None = None,
                            keyword: str | None = None) -> calls.Page:
        return await self._call(calls.workflow_logs(page=page, limit=limit, status=status, keyword=keyword))

    async def chat_blocking(self, *, query: str, user: str, inputs: dict[str, Any] | None = None,
                            conversation_id: str | None = None,
                            timeout: float | None = None) -> dict[str, Any]:
        call = calls.chat_messages(query=query, user=user, inputs=inputs, conversation_id=conversation_id,
                                   streaming=False)
        return await self._call(call if timeout is None else _with_timeout(call, timeout))

    async def stop(self, task_id: str, user: str) -> dict[str, Any]:
        return await self._call(calls.stop(task_id, user))

    async def conversations(self, user: str, *, last_id: str | None = None, limit: int = 20) -> calls.Page:
        return await self._call(calls.conversations(user, last_id=last_id, limit=limit))

    async def messages(self, conversation_id: str, user: str, *, first_id: str | None = None,
                       limit: int = 100) -> calls.Page:
        return await self._call(calls.messages(conversation_id, user, first_id=first_id, limit=limit))

    async def rename_conversation(self, conversation_id: str, user: str, *,
                                  name: str | None = None) -> dict[str, Any]:
        return await self._call(calls.rename_conversation(conversation_id, user, name=name))

    async def delete_conversation(self, conversation_id: str, user: str) -> None:
        await self._call(calls.delete_conversation(conversation_id, user))

    async def upload(self, path_or_bytes: Upload, user: str, *, filename: str | None = None,
                     mime_type: str | None = None) -> dict[str, Any]:
        return await self._call(calls.upload(path_or_bytes, user, filename=filename, mime_type=mime_type))

    async def parameters(self) -> dict[str, Any]:
        return await self._call(calls.parameters())

    async def info(self) -> dict[str, Any]:
        return await self._call(calls.info())

    async def suggested(self, message_id: str, user: str) -> list[str]:
        return await self._call(calls.suggested(message_id, user))


def _with_timeout(call: Call[Any], timeout: float) -> Call[Any]:
    import dataclasses

    return dataclasses.replace(call, timeout=timeout)
