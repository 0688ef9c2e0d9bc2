"""How one run sounds on the wire, per system: the executor says what happens (a node
started, text came, the run ended) and a voice writes the frames that system's clients read.
Atomemo's voice writes the Chat API's events; Dify's writes its advanced-chat stream."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Protocol

from ..protocol.atomemo.events import Name as A
from ..protocol.dify.events import Name as D

__all__ = ["ATOMEMO", "DIFY", "OdysseyVoice", "PipelitVoice", "Voice", "dumps"]


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
    def text(self, run: Ids, chunk: str) -> str | None: ...
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
    """Dify 1.13 advanced-chat: every frame carries the message's ids; the run's events carry the
    workflow run id and a `data` object with all the fields Dify's entities give it;
    `message_end` comes before `workflow_finished`, and only when the run succeeded (a failed
    or stopped run ends with `workflow_finished` alone). One voice per run: it remembers the
    answer node speaking (each chunk names it) and the message's metadata until the end."""

    heartbeat = b"event: ping\n\n"

    def __init__(self, *, query: str = "", user: str = "", dialogue_count: int = 1, app_id: str = "") -> None:
        self.created_at = int(time.time())
        self.query, self.user, self.dialogue_count, self.app_id = query, user, dialogue_count, app_id
        self.speaking = "answer"  # the node whose text the next chunk is
        self.failed_nodes = 0
        self._metadata: dict[str, Any] = {}
        self._end_user = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dify-end-user:{user}"))

    def _frame(self, run: Ids, name: str, **fields: Any) -> str:
        return dumps({"event": name, "conversation_id": run.conversation_id, "message_id": run.message_id,
                      "created_at": self.created_at, "task_id": run.task_id, **fields})

    def _run(self, run: Ids, name: str, execution_id: str, data: dict[str, Any]) -> str:
        return self._frame(run, name, workflow_run_id=execution_id, data=data)

    def created(self, run: Ids) -> list[str]:
        return []  # Dify names the message in every frame; the first one announces it

    def system_inputs(self, execution: dict[str, Any]) -> dict[str, Any]:
        return {"sys.files": [], "sys.user_id": self.user, "sys.app_id": self.app_id,
                "sys.workflow_id": execution.get("app_version_id"), "sys.workflow_run_id": execution["id"],
                "sys.query": self.query, "sys.dialogue_count": self.dialogue_count}

    def run_started(self, run: Ids, execution: dict[str, Any]) -> list[str]:
        return [self._run(run, D.WORKFLOW_STARTED, execution["id"], {
            "id": execution["id"], "workflow_id": execution["app_version_id"],
            "inputs": self.system_inputs(execution), "created_at": self.created_at, "reason": "initial"})]

    def _node(self, result: dict[str, Any], node: tuple[str, str], parent: Any) -> dict[str, Any]:
        name, kind = node
        return {"id": result["id"], "node_id": result["node_id"], "node_type": DIFY_TYPES.get(kind, kind),
                "title": name, "index": 1, "predecessor_node_id": None, "inputs": result.get("inputs"),
                "inputs_truncated": False, "created_at": self.created_at, "extras": {}, "iteration_id": None,
                "loop_id": parent}

    def node_started(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any) -> list[str]:
        data = self._node(result, node, parent)
        self.speaking = result["node_id"]
        if node[1] == "loop":  # a container's start names no predecessor, and no container
            for key in ("predecessor_node_id", "iteration_id", "loop_id"):
                data.pop(key)
            return [self._run(run, D.LOOP_STARTED, result["execution_id"], data)]
        return [self._run(run, D.NODE_STARTED, result["execution_id"], data | {"agent_strategy": None})]

    def loop_next(self, run: Ids, result: dict[str, Any], node: tuple[str, str], index: int) -> list[str]:
        data = {k: v for k, v in self._node(result, node, None).items()
                if k not in ("predecessor_node_id", "iteration_id", "loop_id")}
        return [self._run(run, D.LOOP_NEXT, result["execution_id"], data | {"index": index})]

    def node_finished(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any,
                      elapsed: float) -> list[str]:
        status = DIFY_STATUS.get(result["status"], "failed")
        self.failed_nodes += status == "failed"
        data = self._node(result, node, parent) | {
            "status": status, "error": result.get("error"),
            "outputs": result.get("json_output") if isinstance(result.get("json_output"), dict)
            else {"output": result.get("json_output")}, "outputs_truncated": False,
            "process_data": {}, "process_data_truncated": False, "elapsed_time": round(elapsed, 6),
            "finished_at": int(time.time()), "files": [],
            "execution_metadata": {"total_tokens": result.get("tokens") or 0}}
        data.pop("extras")
        if node[1] == "loop":
            data |= {"steps": result.get("steps", 0), "total_tokens": 0}
            for key in ("index", "predecessor_node_id", "process_data", "process_data_truncated", "files",
                        "iteration_id", "loop_id"):
                data.pop(key, None)
            return [self._run(run, D.LOOP_COMPLETED, result["execution_id"], data)]
        return [self._run(run, D.NODE_FINISHED, result["execution_id"], data)]

    def _log(self, run: Ids, call: dict[str, Any], parent_run: str, status: str, payload: Any,
             entry: tuple[str, str, str | None] | None = None) -> str:
        entry_id, label, parent = entry or (call["id"], call["tool_name"], None)
        return self._frame(run, D.AGENT_LOG, data={
            "node_execution_id": parent_run, "id": entry_id, "label": label, "parent_id": parent,
            "error": None, "status": status, "data": payload, "metadata": {}, "node_id": call["node_id"]})

    def tool_started(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        # Each call is a root of the agent's log; the agent's thought before it, its child.
        thought = (f"{call['id']}:thought", "Thought", call["id"])
        return [self._log(run, call, parent_run, "start", call["args"]),
                self._log(run, call, parent_run, "success", {"thought": f"I will call {call['tool_name']}."},
                          thought)]

    def tool_finished(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        return [self._log(run, call, parent_run, "success", call["result"])]

    def text(self, run: Ids, chunk: str) -> str:
        return self._frame(run, D.MESSAGE, id=run.message_id, answer=chunk,
                           from_variable_selector=[self.speaking, "answer"])

    def reasoning(self, run: Ids, node_id: str, chunk: str, final: bool) -> str:
        """The model's thinking, as the 2026 spec's reasoning_chunk carries it (1.13.2 has none)."""
        return self._frame(run, D.REASONING_CHUNK,
                           data={"reasoning": chunk, "node_id": node_id, "is_final": final})

    def _form_data(self, result: dict[str, Any], node: tuple[str, str], form: dict[str, Any],
                   pending: Any) -> dict[str, Any]:
        return {"form_id": pending.form_id, "node_id": result["node_id"], "node_title": node[0],
                "form_content": form["content"],
                "inputs": [{"type": f["type"], "output_variable_name": f["name"],
                            "default": None if f.get("default") is None else
                            {"type": "constant", "selector": [], "value": f["default"]}} for f in form["fields"]],
                "actions": [{"id": a["id"], "title": a["title"], "button_style": a["style"]} for a in form["actions"]],
                "display_in_ui": True, "form_token": pending.token, "resolved_default_values": {},
                "expiration_time": int(pending.expires_at)}

    def human_input(self, run: Ids, result: dict[str, Any], node: tuple[str, str], form: dict[str, Any],
                    pending: Any) -> list[str]:
        """A Human Input node waits: its form, then the run's pause (1.13.2's two frames)."""
        data = self._form_data(result, node, form, pending)
        reason = {"TYPE": "human_input_required", **{k: v for k, v in data.items() if k != "expiration_time"}}
        return [self._run(run, D.HUMAN_INPUT_REQUIRED, result["execution_id"], data),
                self._run(run, D.WORKFLOW_PAUSED, result["execution_id"], {
                    "workflow_run_id": result["execution_id"], "paused_nodes": [result["node_id"]], "outputs": {},
                    "reasons": [reason], "status": "paused", "created_at": self.created_at, "elapsed_time": 0.0,
                    "total_tokens": 0, "total_steps": 0})]

    def human_input_ended(self, run: Ids, result: dict[str, Any], node: tuple[str, str], form: dict[str, Any],
                          pending: Any, outcome: tuple[str, dict[str, Any]] | None) -> list[str]:
        """The run goes on: a second workflow_started (reason resumption), the node again, and
        the form filled (its content with the answers in) or timed out."""
        execution_id = result["execution_id"]
        frames = [self._run(run, D.WORKFLOW_STARTED, execution_id, {
            "id": execution_id, "workflow_id": None, "inputs": {}, "created_at": self.created_at,
            "reason": "resumption"})]
        frames += self.node_started(run, result, node, None)
        if outcome is None:
            frames.append(self._run(run, D.HUMAN_INPUT_FORM_TIMEOUT, execution_id, {
                "node_id": result["node_id"], "node_title": node[0], "expiration_time": int(pending.expires_at)}))
            return frames
        action, given = outcome
        rendered = str(form["content"])
        for name, value in given.items():
            rendered = rendered.replace("{{#$output." + name + "#}}", str(value))
        title = next((a["title"] for a in form["actions"] if a["id"] == action), action)
        frames.append(self._run(run, D.HUMAN_INPUT_FORM_FILLED, execution_id, {
            "node_id": result["node_id"], "node_title": node[0], "rendered_content": rendered,
            "action_id": action, "action_text": title}))
        return frames

    def answer_end(self, run: Ids, metadata: dict[str, Any]) -> list[str]:
        # Held until the run's end: Dify sends message_end only for a run that succeeded.
        usage = dict(metadata.get("usage") or {})
        for side in ("prompt", "completion"):
            usage |= {f"{side}_unit_price": "0.0", f"{side}_price_unit": "0.0", f"{side}_price": "0.0"}
        usage |= {"total_price": "0.0", "currency": "USD", "latency": 0.0, "time_to_first_token": 0.0,
                  "time_to_generate": 0.0}
        self._metadata = {"annotation_reply": None, **metadata, "usage": usage}
        return []

    def run_finished(self, run: Ids, finished: dict[str, Any]) -> list[str]:
        status = finished["status"]
        end = [self._frame(run, D.MESSAGE_END, id=run.message_id, metadata=self._metadata, files=[])]
        return [*(end if status == "succeeded" else []), self._run(run, D.WORKFLOW_FINISHED, finished["id"], {
            "id": finished["id"], "workflow_id": finished.get("app_version_id"),
            "status": status, "outputs": {"answer": finished.get("answer") or "", "files": []},
            "error": "Stopped by user." if status == "stopped" else finished.get("error"),
            "elapsed_time": round(finished.get("elapsed", 0.0), 6),
            "total_tokens": finished.get("tokens", 0), "total_steps": finished.get("steps", 0),
            "created_by": {"id": self._end_user, "user": self.user}, "created_at": self.created_at,
            "finished_at": int(time.time()), "exceptions_count": self.failed_nodes, "files": []})]

    def error(self, run: Ids, status: int, code: str, message: str) -> str:
        return self._frame(run, D.ERROR, status=status, code=code, message=message)


ATOMEMO = AtomemoVoice()
DIFY = DifyVoice


# Atomemo node types as Pipelit names its components, with their display names.
PIPELIT_TYPES = {
    "chat_trigger": ("trigger_chat", "Chat Trigger"), "knowledge_retrieval": ("memory_read", "Memory Read"),
    "llm": ("simple_agent", "Simple Agent"), "answer": ("reply_chat", "Reply Chat"), "ai_agent": ("agent", "Agent"),
    "loop": ("loop", "Loop"), "http_request": ("http_request", "HTTP Request"), "if": ("switch", "Switch"),
    "switch": ("switch", "Switch"), "code": ("code", "Code"),
}
PIPELIT_DONE = {"succeeded": "success", "break": "success", "failed": "failed", "stopped": "failed"}


def _pipelit_id(name: str, kind: str) -> str:
    """Pipelit names a node `<component>_<short id>`: here the component and the node's name."""
    words = "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())
    return f"{PIPELIT_TYPES.get(kind, (kind, kind))[0]}_{words}"


def _pipelit_output(output: Any) -> dict[str, Any]:
    """A node's output as Pipelit shapes it: `{"output": ...}` (the demo's {"text"}/{"answer"}
    and the like become the value; anything else is the value whole)."""
    if isinstance(output, dict):
        for key in ("text", "answer", "message", "output"):
            if isinstance(output.get(key), str):
                return {"output": output[key]}
    return {"output": output}


class PipelitVoice:
    """Pipelit 0.3.16's WebSocket messages on the workflow's channel, as recorded
    (tests/peers/pipelit): no answer tokens; the trigger never reported; a node queued once
    (`node_enqueued`) and then running/finished per attempt, a retry without another
    `node_enqueued`; outputs as `{"output": ...}`; an agent's usage inside its success
    `node_status` (`token_usage`), no event of its own; a chat_message per AI message; tool
    calls as `node_status` of the tool node under the agent; the answer whole in
    `execution_completed`; `execution_failed` with the last attempt's error and no code."""

    heartbeat = b""  # the socket pings, not the run

    def __init__(self, slug: str, workflow_id: int) -> None:
        self.channel = f"workflow:{slug}"
        self.workflow_id = workflow_id
        self.agent: str | None = None
        self.enqueued: set[str] = set()  # nodes queued in this execution: a retry is not queued again
        self.last_error: str | None = None  # the last failed attempt's error (execution_failed says it)
        self.tool_calls = 0  # the agent's, for its token_usage.tool_invocations

    def _message(self, run: Ids, kind: str, data: dict[str, Any] | None = None) -> str:
        payload: dict[str, Any] = {"type": kind, "execution_id": run.message_id, "timestamp": time.time()}
        if data is not None:
            payload["data"] = data
        payload["channel"] = self.channel
        return dumps(payload)

    @staticmethod
    def _meta(node: tuple[str, str]) -> dict[str, Any]:
        name, kind = node
        component, display = PIPELIT_TYPES.get(kind, (kind, kind))
        node_id = _pipelit_id(name, kind)
        return {"node_id": node_id, "component_type": component, "display_name": display, "node_label": node_id}

    def describe(self, name: str, kind: str) -> dict[str, Any]:
        """A node as the workflow's details list it. Real Pipelit has `label: null` (names are
        node ids); the demo keeps its names here, for the graph and the timeline to show."""
        meta = self._meta((name, kind))
        return {"node_id": meta["node_id"], "component_type": meta["component_type"], "label": name,
                "is_entry_point": kind == "chat_trigger"}

    def created(self, run: Ids) -> list[str]:
        return []

    def run_started(self, run: Ids, execution: dict[str, Any]) -> list[str]:
        return [self._message(run, "execution_started", {"workflow_id": self.workflow_id})]

    def node_started(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any) -> list[str]:
        if node[1] == "chat_trigger":
            return []  # the trigger's job is the execution's start: Pipelit never reports it
        meta = self._meta(node)
        if node[1] == "ai_agent":
            self.agent = meta["node_id"]
        out = []
        if meta["node_id"] not in self.enqueued:
            self.enqueued.add(meta["node_id"])
            out.append(self._message(run, "node_enqueued", {"node_id": meta["node_id"]}))
        out.append(self._message(run, "node_status", {**meta, "status": "running"}))
        return out

    def loop_next(self, run: Ids, result: dict[str, Any], node: tuple[str, str], index: int) -> list[str]:
        return []

    def node_finished(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any,
                      elapsed: float) -> list[str]:
        if node[1] == "chat_trigger":
            return []
        meta = self._meta(node)
        status = PIPELIT_DONE.get(result["status"], "failed")
        out = []
        output = result.get("json_output")
        if node[1] == "ai_agent" and isinstance(output, dict) and isinstance(output.get("text"), str):
            out.append(self._message(run, "chat_message", {"text": output["text"], "node_id": meta["node_id"]}))
        data: dict[str, Any] = {**meta, "status": status}
        if status == "success":
            data |= {"duration_ms": int(elapsed * 1000), "output": _pipelit_output(output)}
            usage = output.get("usage") if isinstance(output, dict) else None
            if node[1] in ("ai_agent", "llm") or isinstance(usage, dict):
                usage = usage if isinstance(usage, dict) else {}
                prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                data["token_usage"] = {"input_tokens": prompt, "output_tokens": completion,
                                       "total_tokens": prompt + completion, "llm_calls": 1, "cost_usd": 0.0,
                                       "tool_invocations": self.tool_calls}
        else:
            self.last_error = str(result.get("error") or "failed")[:500]
            data |= {"error": self.last_error, "error_code": "RuntimeError"}
        out.append(self._message(run, "node_status", data))
        return out

    def _tool(self, run: Ids, call: dict[str, Any], status: str) -> str:
        tool_node = f"tool_{call['tool_name']}"
        return self._message(run, "node_status", {
            "node_id": tool_node, "status": status, "tool_name": call["tool_name"],
            "parent_node_id": self.agent or "", "is_tool_call": True, "component_type": call["tool_name"],
            "display_name": call["tool_name"].replace("_", " ").title(), "node_label": tool_node})

    def tool_started(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        self.tool_calls += 1
        return [self._tool(run, call, "running")]

    def tool_finished(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        return [self._tool(run, call, "success")]

    def text(self, run: Ids, chunk: str) -> str | None:
        return None  # Pipelit sends no answer tokens: the answer comes whole at the end

    def answer_end(self, run: Ids, metadata: dict[str, Any]) -> list[str]:
        return []  # no token_usage event: usage rides on the agent's success node_status

    def run_finished(self, run: Ids, finished: dict[str, Any]) -> list[str]:
        status = finished["status"]
        if status == "succeeded":
            return [self._message(run, "execution_completed", {
                "output": {"output": finished.get("answer") or ""},
                "activity_summary": {"total_steps": finished.get("steps", 0),
                                     "total_duration_ms": int(finished.get("elapsed", 0.0) * 1000),
                                     "total_tokens": finished.get("tokens", 0), "total_cost_usd": 0.0,
                                     "llm_calls": 1, "tool_invocations": 0, "child_count": 0}})]
        if status == "stopped":
            return [self.cancelled(run.message_id)]
        error = self.last_error or str(finished.get("error") or "the execution failed")[:500]
        return [self._message(run, "execution_failed", {"error": error})]

    def cancelled(self, execution_id: str) -> str:
        """`execution_cancelled` as Pipelit sends it: its execution only inside `data`."""
        return dumps({"type": "execution_cancelled", "channel": self.channel, "timestamp": time.time(),
                      "data": {"execution_id": execution_id}})

    def error(self, run: Ids, status: int, code: str, message: str) -> str:
        return self._message(run, "execution_failed", {"error": message[:500]})


# Atomemo node types as OdysseyAI's step types (the reference names 'rag'; the rest are ours).
ODYSSEY_STEPS = {"knowledge_retrieval": "rag", "llm": "llm", "ai_agent": "agent", "http_request": "http",
                 "loop": "loop", "if": "decision", "switch": "decision", "code": "code"}
ODYSSEY_SILENT = frozenset({"chat_trigger", "answer"})  # no step of their own: the answer is the last step


class OdysseyVoice:
    """OdysseyAI says nothing until the end. This voice writes records that never leave the
    server: the route assembles them into its one JSON document (steps grouped by agent,
    source snippets, the answer)."""

    heartbeat = b""

    def __init__(self, root_agent: str) -> None:
        self.root = root_agent
        self.agent: str | None = None  # the AI Agent node whose tool calls are running

    @staticmethod
    def _record(kind: str, **fields: Any) -> str:
        return dumps({"kind": kind, **fields})

    def created(self, run: Ids) -> list[str]:
        return []

    def run_started(self, run: Ids, execution: dict[str, Any]) -> list[str]:
        return []

    def node_started(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any) -> list[str]:
        if node[1] == "ai_agent":
            self.agent = node[0]
        return []

    def loop_next(self, run: Ids, result: dict[str, Any], node: tuple[str, str], index: int) -> list[str]:
        return []

    def node_finished(self, run: Ids, result: dict[str, Any], node: tuple[str, str], parent: Any,
                      elapsed: float) -> list[str]:
        name, kind = node
        if kind in ODYSSEY_SILENT:
            return []
        failed = result["status"] == "failed"
        content = {"error": result.get("error")} if failed else result.get("json_output")
        agent = name if kind == "ai_agent" else self.root
        external = "Help center" if kind == "knowledge_retrieval" else ""
        return [self._record("step", agentname=agent, content=content, external=external,
                             step_id=result["id"], type=ODYSSEY_STEPS.get(kind, kind), node=name)]

    def tool_started(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        return []

    def tool_finished(self, run: Ids, call: dict[str, Any], parent_run: str) -> list[str]:
        return [self._record("step", agentname=self.agent or self.root,
                             content={"args": call["args"], "result": call["result"]}, external=call["tool_name"],
                             step_id=call["id"], type="tool", node=call["tool_name"])]

    def text(self, run: Ids, chunk: str) -> str | None:
        return None

    def answer_end(self, run: Ids, metadata: dict[str, Any]) -> list[str]:
        return [self._record("sources", items=metadata.get("retriever_resources") or [])]

    def run_finished(self, run: Ids, finished: dict[str, Any]) -> list[str]:
        return [self._record("end", status=finished["status"], answer=finished.get("answer") or "",
                             error=finished.get("error"))]

    def error(self, run: Ids, status: int, code: str, message: str) -> str:
        return self._record("end", status="failed", answer="", error=message)
