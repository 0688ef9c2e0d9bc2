"""The port a chat talks through: a system's backend (its plans, written once with no I/O,
protocol/<system>/backend.py) bound to a client by one of two small drivers, sync or async.
The drivers differ only in waiting: each plan (the backend's, or the chat's around it) is run
by the client's `_drive`; each send is the stream its plan describes, opened by the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from ..protocol import _neutral as n
from ..protocol._call import Open, Plan
from ..protocol._system import Translate
from ..protocol._systems import system as system_named
from ..protocol._wire import FileRef
from ..protocol.backend import Backend, Upload
from ..transport._client import AsyncHttp, SyncHttp
from ..transport._streams import AsyncStream, SyncStream
from .reply import Reply

__all__ = ["AsyncDriver", "Backend", "SyncDriver", "backend_for"]

T = TypeVar("T")


def backend_for(client: SyncHttp | AsyncHttp, where: Mapping[str, Any]) -> Backend:
    """The backend of the system `client` speaks, for one chat (`where`: connect()'s settings)."""
    return system_named(client.DIALECT.system).backend(client.base_url, where)


class _Driver:
    """What both drivers know without waiting."""

    plans: Backend

    def __init__(self, plans: Backend) -> None:
        self.plans = plans
        self.system = plans.system
        self.capabilities: n.Capabilities = system_named(plans.system).capabilities

    def translator(self) -> Translate:
        return self.plans.translator()

    def coordinates(self) -> dict[str, Any]:
        return self.plans.coordinates()


def _opened(spec: Open, message_id: str | None) -> None:
    if spec.opened is not None:
        spec.opened(str(message_id))


class SyncDriver(_Driver):
    """A backend over a sync client."""

    def __init__(self, plans: Backend, client: SyncHttp) -> None:
        if client.ASYNCHRONOUS:
            raise TypeError(f"{type(client).__name__} is async: use AsyncChat")
        super().__init__(plans)
        self.client = client
        client.hold()

    def release(self) -> None:
        self.client.release()

    def run(self, plan: Plan[T]) -> T:
        """Run a plan: the backend's, or the chat's around it."""
        return self.client.run_plan(plan)

    def open(self, spec: Open) -> SyncStream:
        """The stream a send plan describes, opened."""
        stream = self.client.open_stream(spec)
        _opened(spec, stream.message_id)
        return stream

    def run_events(self, run_id: str, user: str) -> SyncStream | None:
        """The run's further events, open for the caller to read (the backend's plan picks the
        route), or None where the server has no such stream."""
        stream: SyncStream | None = self.run(self.plans.run_events(run_id, user))  # a Listen's answer
        return stream

    def stop(self, task_id: str | None, user: str) -> None:
        self.run(self.plans.stop(task_id, user))

    def cancel(self, reply: Reply) -> None:
        """Stop, where the system can only ask to cancel: the reply hears what happens next."""
        if reply.execution_id:  # else the POST had not answered: there is nothing to cancel yet
            self.run(self.plans.cancel(reply.execution_id, reply.note_after_end))

    def upload(self, source: Upload, *, filename: str | None, mime_type: str | None, user: str) -> FileRef:
        return self.run(self.plans.upload(source, filename=filename, mime_type=mime_type, user=user))


class AsyncDriver(_Driver):
    """A backend over an async client."""

    def __init__(self, plans: Backend, client: AsyncHttp) -> None:
        if not client.ASYNCHRONOUS:
            raise TypeError(f"{type(client).__name__} is sync: use Chat")
        super().__init__(plans)
        self.client = client
        client.hold()

    async def release(self) -> None:
        await self.client.release()

    async def run(self, plan: Plan[T]) -> T:
        return await self.client.run_plan(plan)

    async def open(self, spec: Open) -> AsyncStream:
        stream = await self.client.open_stream(spec)
        _opened(spec, stream.message_id)
        return stream

    async def run_events(self, run_id: str, user: str) -> AsyncStream | None:
        stream: AsyncStream | None = await self.run(self.plans.run_events(run_id, user))
        return stream

    async def stop(self, task_id: str | None, user: str) -> None:
        await self.run(self.plans.stop(task_id, user))

    async def cancel(self, reply: Reply) -> None:
        if reply.execution_id:
            await self.run(self.plans.cancel(reply.execution_id, reply.note_after_end))

    async def upload(self, source: Upload, *, filename: str | None, mime_type: str | None,
                     user: str) -> FileRef:
        return await self.run(self.plans.upload(source, filename=filename, mime_type=mime_type, user=user))
