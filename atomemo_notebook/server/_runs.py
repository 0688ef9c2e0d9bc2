"""Runs: a message's workflow played as events, kept for resume, followed by any number
of connections. A run goes on when its connection drops; that is what resume relies on."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..protocol.atomemo.events import Name
from ..protocol.log import get_logger
from ._demo import DemoApp, NodeRun, Plan
from ._store import Store, now_iso

log = get_logger("atomemo_notebook.server")


def dumps(payload: dict[str, Any]) -> str:
    # ensure_ascii=False: U+2028 and friends travel raw, as a real server's JSON may send them.
    return json.dumps(payload, ensure_ascii=False, separators=(", ", ": "))


class Run:
    def __init__(self, message_id: str, conversation_id: str) -> None:
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.events: list[str] = []
        self.done = False
        self.ended_at: float | None = None
        self._changed = asyncio.Event()

    @classmethod
    def finished(cls, message_id: str, events: list[str], ended_at: float) -> Run:
        run = cls(message_id, "")
        run.events, run.done, run.ended_at = events, True, ended_at
        return run

    @staticmethod
    def frame(name: str, data: dict[str, Any] | None = None) -> str:
        return dumps({"event": name} if data is None else {"event": name, "data": data})

    def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        self.emit_frame(self.frame(name, data))

    def emit_frame(self, payload: str) -> None:
        self.events.append(payload)
        self._changed.set()
        self._changed = asyncio.Event()

    def finish(self) -> None:
        self.done = True
        self.ended_at = time.time()
        self._changed.set()

    async def follow(self, heartbeat: float) -> AsyncIterator[list[str]]:
        """Batches of event payloads from the first; an empty batch means 'send a heartbeat'."""
        sent = 0
        while True:
            if sent < len(self.events):
                batch = self.events[sent:]
                sent += len(batch)
                yield batch
                continue
            if self.done:
                return
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), timeout=heartbeat)
            except asyncio.TimeoutError:
                yield []


class Pace:
    def __init__(self, chunk_size: int, chunk_delay: float, node_delay: float) -> None:
        self.chunk_size = max(1, chunk_size)
        self.chunk_delay = max(0.0, chunk_delay)
        self.node_delay = max(0.0, node_delay)


class Executor:
    """Plays a Plan into a Run, recording executions and node results in the Store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, run: Run, app: DemoApp, plan: Plan, pace: Pace, *, store_fail: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._execute(run, app, plan, pace, store_fail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, run: Run, app: DemoApp, plan: Plan, pace: Pace, store_fail: bool) -> None:
        results: list[dict[str, Any]] = []
        answer: list[str] = []
        status = "failed"
        reason: str | None = None
        execution_id = str(uuid.uuid4())
        execution = {"id": execution_id, "status": "running", "trigger_id": app.trigger_id,
                     "app_version_id": app.version_id, "conversation_id": run.conversation_id,
                     "created_at": now_iso()}
        try:
            run.emit(Name.MESSAGE_CREATED, {"message_id": run.message_id,
                                         "conversation_id": run.conversation_id})
            self.store.start_answering(run.message_id, execution)
            run.emit(Name.EXECUTION_STARTED, {"resource_type": "execution", "resource": execution})
            for node_run in plan.runs:
                await self._play(run, app, node_run, execution_id, pace, results, answer)
            status = plan.status
        except asyncio.CancelledError:
            reason = "the server stopped while the run was in flight"
            raise
        except Exception as exc:  # a bug in a demo app must fail its message, not the server
            log.exception("run of message %s failed", run.message_id)
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            if store_fail:  # fault injection: a row that breaks NOT NULL, midway through the write
                results.append({"id": str(uuid.uuid4()), "execution_id": execution_id, "node_id": None,
                                "status": "succeeded", "json_output": None, "out_ports": [], "error": None})
            self._finish(run, execution, status, reason, "".join(answer) if answer else None, results)

    def _finish(self, run: Run, execution: dict[str, Any], status: str, reason: str | None,
                answer: str | None, results: list[dict[str, Any]]) -> None:
        """Store the run, then tell the stream how it ended, then end the stream: always, even
        when storing fails (then the run ends failed, saying why, and the message too)."""
        finished = {k: v for k, v in execution.items() if k != "created_at"} | {"status": status}
        if reason:
            finished["error"] = reason
        last = run.frame(Name.EXECUTION_FINISHED, {"resource_type": "execution", "resource": finished})
        try:
            self.store.finish_message(run.message_id, status=status, answer=answer,
                                      execution_id=execution["id"], results=results,
                                      events=[*run.events, last])
        except Exception as exc:
            log.exception("could not store the run of message %s", run.message_id)
            finished |= {"status": "failed", "error": f"the run could not be stored ({type(exc).__name__})"}
            last = run.frame(Name.EXECUTION_FINISHED, {"resource_type": "execution", "resource": finished})
            try:
                self.store.fail_message(run.message_id, execution["id"])
            except Exception:
                log.exception("could not mark message %s failed", run.message_id)
        run.emit_frame(last)
        run.finish()

    def fail_unstarted(self, run: Run, reason: str) -> None:
        """A run that could not even start: its stream still says so, and ends."""
        run.emit(Name.MESSAGE_CREATED, {"message_id": run.message_id, "conversation_id": run.conversation_id})
        execution = {"id": str(uuid.uuid4()), "status": "failed", "trigger_id": None,
                     "app_version_id": None, "conversation_id": run.conversation_id, "created_at": now_iso()}
        self._finish(run, execution, "failed", reason, None, [])

    async def _play(self, run: Run, app: DemoApp, node_run: NodeRun, execution_id: str,
                    pace: Pace, results: list[dict[str, Any]], answer: list[str]) -> None:
        result: dict[str, Any] = {"id": str(uuid.uuid4()), "node_id": app.node_id(node_run.node),
                  "execution_id": execution_id, "status": "running", "json_output": None,
                  "out_ports": [], "error": None}
        run.emit(Name.NODE_STARTED, {"resource_type": "result", "resource": dict(result)})
        for child in node_run.children:
            await self._play(run, app, child, execution_id, pace, results, answer)
        for tool in node_run.tools:
            call = {"id": str(uuid.uuid4()), "node_id": result["node_id"], "tool_name": tool.tool_name}
            run.emit(Name.TOOL_CALL_STARTED, {"resource_type": "tool_call",
                                           "resource": call | {"args": tool.args}})
            await asyncio.sleep(pace.node_delay)
            run.emit(Name.TOOL_RESPONSE, {"resource_type": Name.TOOL_RESPONSE,
                                       "resource": call | {"result": json.dumps(tool.result)}})
        if node_run.answer is not None:
            await self._stream_text(run, node_run.answer, pace, answer)
        await asyncio.sleep(pace.node_delay)
        result |= {"status": node_run.status, "json_output": node_run.output,
                   "out_ports": node_run.out_ports, "error": node_run.error}
        run.emit(Name.NODE_FINISHED, {"resource_type": "result", "resource": result})
        results.append(result)

    @staticmethod
    async def _stream_text(run: Run, text: str, pace: Pace, answer: list[str]) -> None:
        size = pace.chunk_size
        for n, start in enumerate(range(0, len(text), size), 1):
            chunk = text[start:start + size]
            answer.append(chunk)
            run.emit(Name.CHAT_MESSAGE, {"text": chunk})
            if pace.chunk_delay:
                await asyncio.sleep(pace.chunk_delay)
            elif n % 256 == 0:
                await asyncio.sleep(0)  # let connections drain even at full speed
