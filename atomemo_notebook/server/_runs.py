"""Runs: a message's workflow played as events, kept for resume, followed by any number
of connections. A run goes on when its connection drops; that is what resume relies on."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..protocol._log import get_logger
from ._demo import DemoApp, NodeRun, Plan
from ._store import Store, now_iso
from ._voices import ATOMEMO, Voice, dumps

log = get_logger("atomemo_notebook.server")


MODEL_NODES = frozenset({"llm", "ai_agent"})  # nodes whose output says which sample a regenerate drew


class Run:
    def __init__(self, message_id: str, conversation_id: str, voice: Voice | None = None) -> None:
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.task_id = str(uuid.uuid4())  # what a server-side stop names (Dify)
        self.voice: Voice = voice or ATOMEMO
        self.events: list[str] = []
        self.done = False
        self.stopping = False
        self.sample = 1  # which answer to the same question this is (a regenerate: 2, 3, ...)
        self.ended_at: float | None = None
        self.execution_id: str | None = None
        # A run waiting for a person (Dify's Human Input): its stream ends at the pause; a
        # follower asked to go through pauses waits on. `resume_at`: the first event after the
        # latest resumption (where a follower that came after it starts).
        self.paused = False
        self.resume_at: int | None = None
        self.form: Any = None  # the form it waits on, or last waited on (its PendingForm)
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

    def pause(self) -> None:
        self.paused = True
        self._changed.set()
        self._changed = asyncio.Event()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused, self.resume_at = False, len(self.events)
        self._changed.set()
        self._changed = asyncio.Event()

    def finish(self) -> None:
        self.done = True
        self.ended_at = time.time()
        self._changed.set()

    async def follow(self, heartbeat: float, start: int = 0, through_pause: bool = False) -> AsyncIterator[list[str]]:
        """Batches of event payloads from the `start`th; an empty batch means 'send a heartbeat'.
        Ends with the run, or at a pause unless `through_pause`."""
        sent = start
        while True:
            if sent < len(self.events):
                batch = self.events[sent:]
                sent += len(batch)
                yield batch
                continue
            if self.done or (self.paused and not through_pause):
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
        self._by_run: dict[str, asyncio.Task[None]] = {}

    def start(self, run: Run, app: DemoApp, plan: Plan, pace: Pace, *, store_fail: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._execute(run, app, plan, pace, store_fail))
        self._tasks.add(task)
        self._by_run[run.message_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self._by_run.pop(run.message_id, None)

        task.add_done_callback(done)

    def stop(self, run: Run) -> bool:
        """Cancel a run in flight (Dify's stop API); True when there was one to stop."""
        task = self._by_run.get(run.message_id)
        if task is None or task.done():
            return False
        run.stopping = True
        task.cancel()
        return True

    async def _execute(self, run: Run, app: DemoApp, plan: Plan, pace: Pace, store_fail: bool) -> None:
        results: list[dict[str, Any]] = []
        answer: list[str] = []
        status = "failed"
        reason: str | None = None
        execution_id = str(uuid.uuid4())
        run.execution_id = execution_id
        execution = {"id": execution_id, "status": "running", "trigger_id": app.trigger_id,
                     "app_version_id": app.version_id, "conversation_id": run.conversation_id,
                     "created_at": now_iso()}
        started = time.monotonic()
        voice = run.voice
        try:
            for frame in voice.created(run):
                run.emit_frame(frame)
            self.store.start_answering(run.message_id, execution)
            for frame in voice.run_started(run, execution):
                run.emit_frame(frame)
            for node_run in plan.runs:
                await self._play(run, app, node_run, execution_id, pace, results, answer, None)
            status = plan.status
            if status == "failed":  # the run says why: the first node that failed
                reason = next((r["error"] for r in results if r["status"] == "failed" and r["error"]), None)
        except asyncio.CancelledError:
            if run.stopping:  # stopped through the API: the run ends stopped, and says so
                status, reason = "stopped", "stopped by the user"
            else:
                reason = "the server stopped while the run was in flight"
                raise
        except Exception as exc:  # a bug in a demo app must fail its message, not the server
            log.exception("run of message %s failed", run.message_id)
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            if store_fail:  # fault injection: a row that breaks NOT NULL, midway through the write
                results.append({"id": str(uuid.uuid4()), "execution_id": execution_id, "node_id": None,
                                "status": "succeeded", "json_output": None, "out_ports": [], "error": None})
            text = "".join(answer) if answer else None
            for frame in voice.answer_end(run, _metadata(plan, text, results)):
                run.emit_frame(frame)
            self._finish(run, execution, status, reason, text, results, time.monotonic() - started)

    def _finish(self, run: Run, execution: dict[str, Any], status: str, reason: str | None,
                answer: str | None, results: list[dict[str, Any]], elapsed: float = 0.0) -> None:
        """Store the run, then tell the stream how it ended, then end the stream: always, even
        when storing fails (then the run ends failed, saying why, and the message too)."""
        finished = {k: v for k, v in execution.items() if k != "created_at"} | {"status": status}
        if reason:
            finished["error"] = reason
        extra = {"elapsed": elapsed, "answer": answer, "steps": len(results),
                 "tokens": sum(_usage(r, "prompt_tokens") + _usage(r, "completion_tokens") for r in results)}
        last = run.voice.run_finished(run, finished | extra)
        stored_status = "failed" if status == "stopped" else status
        try:
            self.store.finish_message(run.message_id, status=stored_status, answer=answer,
                                      execution_id=execution["id"], results=results,
                                      events=[*run.events, *last])
        except Exception as exc:
            log.exception("could not store the run of message %s", run.message_id)
            finished |= {"status": "failed", "error": f"the run could not be stored ({type(exc).__name__})"}
            last = run.voice.run_finished(run, finished | extra)
            try:
                self.store.fail_message(run.message_id, execution["id"])
            except Exception:
                log.exception("could not mark message %s failed", run.message_id)
        for frame in last:
            run.emit_frame(frame)
        run.finish()

    def fail_unstarted(self, run: Run, reason: str) -> None:
        """A run that could not even start: its stream still says so, and ends."""
        for frame in run.voice.created(run):
            run.emit_frame(frame)
        execution = {"id": str(uuid.uuid4()), "status": "failed", "trigger_id": None,
                     "app_version_id": None, "conversation_id": run.conversation_id, "created_at": now_iso()}
        self._finish(run, execution, "failed", reason, None, [])

    async def _play(self, run: Run, app: DemoApp, node_run: NodeRun, execution_id: str,
                    pace: Pace, results: list[dict[str, Any]], answer: list[str], parent: str | None) -> None:
        node_id = app.node_id(node_run.node)
        node = app.node_names()[node_run.node]
        result: dict[str, Any] = {"id": str(uuid.uuid4()), "node_id": node_id,
                                  "execution_id": execution_id, "status": "running", "json_output": None,
                                  "out_ports": [], "error": None}
        started = time.monotonic()
        voice = run.voice
        for frame in voice.node_started(run, result, node, parent):
            run.emit_frame(frame)
        for index, child in enumerate(node_run.children):
            for frame in voice.loop_next(run, result, node, index):
                run.emit_frame(frame)
            await self._play(run, app, child, execution_id, pace, results, answer, node_id)
        for tool in node_run.tools:
            call = {"id": str(uuid.uuid4()), "node_id": node_id, "tool_name": tool.tool_name,
                    "args": tool.args, "result": tool.result}
            for frame in voice.tool_started(run, call, result["id"]):
                run.emit_frame(frame)
            await asyncio.sleep(pace.node_delay)
            for frame in voice.tool_finished(run, call, result["id"]):
                run.emit_frame(frame)
        thinks = getattr(voice, "reasoning", None)  # only a voice that carries thinking has it
        if node_run.reasoning and thinks is not None:
            await self._stream_reasoning(run, node_id, node_run.reasoning, pace, thinks)
        if node_run.answer is not None:
            await self._stream_text(run, node_run.answer, pace, answer)
        after: list[NodeRun] = []
        if node_run.form is not None:
            action, given = await self._ask_person(run, node_run, result, node)
            output = {**given, "__action_id": action}
            node_run = dataclasses.replace(node_run, output=output)
            after = node_run.after(action, given) if node_run.after is not None else []
        await asyncio.sleep(pace.node_delay)
        output = node_run.output
        if run.sample > 1 and node[1] in MODEL_NODES and isinstance(output, dict):
            output = {**output, "sample": run.sample}
        result |= {"status": node_run.status, "json_output": output,
                   "out_ports": node_run.out_ports, "error": node_run.error}
        usage = node_run.output.get("usage") if isinstance(node_run.output, dict) else None
        tokens = sum(v for v in usage.values() if isinstance(v, int)) if isinstance(usage, dict) else None
        for frame in voice.node_finished(run, result | {"tokens": tokens, "steps": len(node_run.children)},
                                         node, parent, time.monotonic() - started):
            run.emit_frame(frame)
        results.append(result)
        for next_run in after:  # the branch the person's answer chose
            await self._play(run, app, next_run, execution_id, pace, results, answer, parent)

    @staticmethod
    async def _ask_person(run: Run, node_run: NodeRun, result: dict[str, Any],
                          node: tuple[str, str]) -> tuple[str, dict[str, Any]]:
        """A Human Input node: where the voice can ask (Dify), the run pauses until the form is
        answered or expires; elsewhere the first action is taken with the defaults."""
        form = node_run.form or {}
        defaults = {f["name"]: f.get("default") or "" for f in form.get("fields", [])}
        actions = [a["id"] for a in form.get("actions", [])] or ["continue"]
        ask = getattr(run.voice, "human_input", None)
        if ask is None:
            return actions[0], defaults
        from ._dify_forms import PendingForm  # the forms a person answers live with the Dify routes

        pending = PendingForm.open(run, result, node, form)
        run.form = pending
        for frame in ask(run, result, node, form, pending):
            run.emit_frame(frame)
        run.pause()
        outcome = await pending.outcome()
        run.resume()
        for frame in run.voice.human_input_ended(run, result, node, form, pending, outcome):  # type: ignore[attr-defined]
            run.emit_frame(frame)
        if outcome is None:  # expired: the timeout branch, as Dify's node takes it
            return "__timeout", defaults
        return outcome[0], {**defaults, **outcome[1]}

    @staticmethod
    async def _stream_reasoning(run: Run, node_id: str, text: str, pace: Pace, thinks: Any) -> None:
        size = pace.chunk_size
        for start in range(0, len(text), size):
            run.emit_frame(thinks(run, node_id, text[start:start + size], False))
            if pace.chunk_delay:
                await asyncio.sleep(pace.chunk_delay)
        run.emit_frame(thinks(run, node_id, "", True))

    @staticmethod
    async def _stream_text(run: Run, text: str, pace: Pace, answer: list[str]) -> None:
        size = pace.chunk_size
        for n, start in enumerate(range(0, len(text), size), 1):
            chunk = text[start:start + size]
            answer.append(chunk)
            frame = run.voice.text(run, chunk)
            if frame is not None:  # a system without answer tokens says nothing until the end
                run.emit_frame(frame)
            if pace.chunk_delay:
                await asyncio.sleep(pace.chunk_delay)
            elif n % 256 == 0:
                await asyncio.sleep(0)  # let connections drain even at full speed


def _metadata(plan: Plan, answer: str | None, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The message's metadata as Dify's message_end carries it: usage and the documents the
    retrieval node found (shown as citations)."""
    prompt = sum(_usage(r, "prompt_tokens") for r in results)
    completion = sum(_usage(r, "completion_tokens") for r in results)
    sources = []
    for node_run in plan.runs:
        output = node_run.output if isinstance(node_run.output, dict) else {}
        for position, doc in enumerate(output.get("documents") or [], 1):
            sources.append({"position": position, "dataset_name": "Help center", "document_name": doc["title"],
                            "score": doc["score"], "content": doc.get("snippet") or doc["title"],
                            "segment_id": f"seg-{position}", "document_id": f"doc-{position}",
                            "dataset_id": "help-center"})
    return {"usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion, "total_price": "0", "currency": "USD"},
            "retriever_resources": sources}


def _usage(result: dict[str, Any], key: str) -> int:
    output = result.get("json_output")
    usage = output.get("usage") if isinstance(output, dict) else None
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else 0
