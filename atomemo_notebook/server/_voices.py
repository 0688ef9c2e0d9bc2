"""How one run sounds on the wire, per system: the executor says what happens (a node
started, text came, the run ended) and a voice writes the frames that system's clients read.
Atomemo's voice writes the Chat API's events; Dify's writes its advanced-chat stream."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from ..protocol.atomemo.events import Name as A
from ..protocol.dify.events import Name as D

__all__ = ["ATOMEMO", "DIFY", "Voice", "dumps"]


def dumps(payload: dict[str, Any]) -> str:
    # ensure_ascii=False: U+2028 and friends travel raw, as a real server's JSON may send them.
    return json.dumps(payload, ensure_ascii=False, separators=(", ", ": "))


class Ids(Protocol):
    message_id: str
    conversation_id: str
    task_id: str


class Voice(Protocol):
    heartbeat: bytes

    def created(self, run: Ids) -> list[str]: ...
    def run_started(self, run: Ids, execution: dict[str, Any]) -> list[str]: ...
    def node_started(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any) -> list[str]: ...
    def loop_next(self, run: Ids, result: dict[str, Any], node: tuple[str, str], index: int) -> list[str]: ...
    def node_finished(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any,
                      elapsed: float) -> list[str]: ...
    def tool_started(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]: ...
    def tool_finished(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]: ...
    def text(self, run: Ids, chunk: str) -> str: ...
    def answer_end(self, run: Ids, metadata: dict[str, Any]) -> list[str]: ...
    def run_finished(self, run: Ids, finished: dict[str, Any]) -> list[str]: ...
    def error(self, run: Ids, status: int, code: str, message: str) -> str: ...


class AtomemoVoice:
    heartbeat = b'data: {"event": "heartbeat"}\n\n'

    @staticmethod
    def _frame(name: str, data: dict[str, Any]) -> str:
        return dumps({"event": name, "data": data})

    def created(self, run: Ids) -> list[str]:
        return [self._frame(A.MESSAGE_CREATED, {"message_id": run.message_id,
                                                "conversation_id": run.conversation_id})]

    def run_started(self, run: Ids, execution: dict[str, Any]) -> list[str]:
        return [self._frame(A.EXECUTION_STARTED, {"resource_type": "execution", "resource": execution})]

    def node_started(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any) -> list[str]:
        return [self._frame(A.NODE_STARTED, {"resource_type": "result", "resource": dict(result)})]

    def loop_next(self, run: Ids, result: dict[str, Any], node: tuple[str, str], index: int) -> list[str]:
        return []

    def node_finished(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any,
                      elapsed: float) -> list[str]:
        resource = {k: v for k, v in result.items() if k not in ("tokens", "steps")}
        return [self._frame(A.NODE_FINISHED, {"resource_type": "result", "resource": resource})]

    def tool_started(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        resource = {k: call[k] for k in ("id", "node_id", "tool_name", "args")}
        return [self._frame(A.TOOL_CALL_STARTED, {"resource_type": "tool_call", "resource": resource})]

    def tool_finished(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        resource = {k: call[k] for k in ("id", "node_id", "tool_name")} | {"result": json.dumps(call["result"])}
        return [self._frame(A.TOOL_RESPONSE, {"resource_type": "tool_response", "resource": resource})]

    def text(self, run: Ids, chunk: str) -> str:
        return self._frame(A.CHAT_MESSAGE, {"text": chunk})

    def answer_end(self, run: Ids, metadata: dict[str, Any]) -> list[str]:
        return []

    def run_finished(self, run: Ids, finished: dict[str, Any]) -> list[str]:
        resource = {k: v for k, v in finished.items()
                    if k not in ("created_at", "elapsed", "tokens", "answer", "steps")}
        return [self._frame(A.EXECUTION_FINISHED, {"resource_type": "execution", "resource": resource})]

    def error(self, run: Ids, status: int, code: str, message: str) -> str:
        # Atomemo has no error event: a run that breaks says so in its execution_finished.
        return self._frame(A.EXECUTION_FINISHED, {"resource_type": "execution", "resource": {
            "id": run.task_id, "status": "failed", "conversation_id": run.conversation_id,
            "error": f"{code}: {message}"}})


# Atomemo node types as Dify names its node types.
DIFY_TYPES = {"chat_trigger": "start", "knowledge_retrieval": "knowledge-retrieval", "llm": "llm",
              "answer": "answer", "ai_agent": "agent", "loop": "loop", "http_request": "http-request",
              "if": "if-else", "switch": "if-else", "code": "code"}
DIFY_STATUS = {"succeeded": "succeeded", "failed": "failed", "break": "succeeded", "stopped": "stopped"}


class DifyVoice:
    """Dify advanced-chat: every frame carries the message's ids; the run's events carry the
    workflow run id and a `data` object; `message_end` comes before `workflow_finished`."""

    heartbeat = b"event: ping\n\n"

    def __init__(self) -> None:
        self.created_at = int(time.time())

    def _frame(self, run: Ids, name: str, **fields: Any) -> str:
        return dumps({"event": name, "conversation_id": run.conversation_id, "message_id": run.message_id,
                      "created_at": self.created_at, "task_id": run.task_id, **fields})

    def _run(self, run: Ids, name: str, execution_id: str, data: dict[str, Any]) -> str:
        return self._frame(run, name, workflow_run_id=execution_id, data=data)

    def created(self, run: Ids) -> list[str]:
        return []  # Dify names the message in every frame; the first one announces it

    def run_started(self, run: Ids, execution: dict[str, Any]) -> list[str]:
        return [self._run(run, D.WORKFLOW_STARTED, execution["id"], {
            "id": execution["id"], "workflow_id": execution["app_version_id"], "inputs": {},
            "created_at": self.created_at})]

    def _node(self, result: dict[str, Any], node: tuple[str, str], parent: Any) -> dict[str, Any]:
        name, kind = node
        data = {"id": result["id"], "node_id": result["node_id"], "node_type": DIFY_TYPES.get(kind, kind),
                "title": name, "index": 1, "predecessor_node_id": None, "inputs": result.get("inputs"),
                "created_at": self.created_at}
        if parent is not None:
            data["loop_id"] = parent
        return data

    def node_started(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any) -> list[str]:
        data = self._node(result, node, parent)
        if node[1] == "loop":  # a container's start names no predecessor
            data.pop("predecessor_node_id")
            return [self._run(run, D.LOOP_STARTED, result["execution_id"], data)]
        return [self._run(run, D.NODE_STARTED, result["execution_id"], data)]

    def loop_next(self, run: Ids, result: dict[str, Any], node: tuple[str, str], index: int) -> list[str]:
        data = {k: v for k, v in self._node(result, node, None).items() if k != "predecessor_node_id"}
        return [self._run(run, D.LOOP_NEXT, result["execution_id"], data | {"index": index})]

    def node_finished(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any,
                      elapsed: float) -> list[str]:
        data = self._node(result, node, parent) | {
            "status": DIFY_STATUS.get(result["status"], "failed"), "error": result.get("error"),
            "outputs": result.get("json_output") if isinstance(result.get("json_output"), dict)
            else {"output": result.get("json_output")},
            "process_data": None, "elapsed_time": round(elapsed, 4), "finished_at": int(time.time()),
            "execution_metadata": {"total_tokens": result.get("tokens") or 0}}
        if node[1] == "loop":
            data |= {"steps": result.get("steps", 0), "total_tokens": 0}
            for key in ("index", "predecessor_node_id", "process_data"):
                data.pop(key, None)
            return [self._run(run, D.LOOP_COMPLETED, result["execution_id"], data)]
        return [self._run(run, D.NODE_FINISHED, result["execution_id"], data)]

    def _log(self, run: Ids, call: dict[str, Any], parent_run: str, status: str, payload: Any) -> str:
        return self._frame(run, D.AGENT_LOG, data={
            "node_execution_id": parent_run, "id": call["id"], "label": call["tool_name"], "parent_id": None,
            "error": None, "status": status, "data": payload, "metadata": {}, "node_id": call["node_id"]})

    def tool_started(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        return [self._log(run, call, parent_run, "start", call["args"])]

    def tool_finished(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        return [self._log(run, call, parent_run, "success", call["result"])]

    def text(self, run: Ids, chunk: str) -> str:
        return self._frame(run, D.MESSAGE, id=run.message_id, answer=chunk)

    def answer_end(self, run: Ids, metadata: dict[str, Any]) -> list[str]:
        return [self._frame(run, D.MESSAGE_END, id=run.message_id, metadata=metadata, files=[])]

    def run_finished(self, run: Ids, finished: dict[str, Any]) -> list[str]:
        return [self._run(run, D.WORKFLOW_FINISHED, finished["id"], {
            "id": finished["id"], "workflow_id": finished.get("app_version_id"),
            "status": finished["status"], "outputs": {"answer": finished.get("answer")},
            "error": finished.get("error"), "elapsed_time": round(finished.get("elapsed", 0.0), 4),
            "total_tokens": finished.get("tokens", 0), "total_steps": finished.get("steps", 0),
            "created_at": self.created_at, "finished_at": int(time.time())})]

    def error(self, run: Ids, status: int, code: str, message: str) -> str:
        return self._frame(run, D.ERROR, status=status, code=code, message=message)


ATOMEMO = AtomemoVoice()
DIFY = DifyVoice
