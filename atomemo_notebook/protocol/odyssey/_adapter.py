"""OdysseyAI's answer -> the neutral events. The whole reply is known only at the end, so
every step is `reported` (no live timing: the views draw no bars for them). Steps are
grouped by the agent that did them, one row each under its agent; source snippets become
numbered citations, follow-ups suggestion chips, and the answer replaces the waiting state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import _neutral as n
from .._wire import Event, MalformedFrame
from .events import Name

__all__ = ["MAX_SNIPS", "MAX_STEPS", "OdysseyTranslator", "answer_text"]

MAX_STEPS = 500  # steps drawn from one answer; more are counted in an anomaly
MAX_SNIPS = 50
MAX_FOLLOW_UPS = 10
MAX_ANSWER_JSON = 200_000
ANSWER_KEYS = ("answer", "response", "text", "output", "content", "message")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        for key in ANSWER_KEYS:
            if isinstance(content.get(key), str):
                return str(content[key])
    return None


def _steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("stepsBreakdown")
    return [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []


def answer_text(data: dict[str, Any]) -> str:
    """The answer as text. The schema names no answer field: a top-level text field if the
    server adds one, else the root agent's last step (its content, or the text inside it)."""
    for key in ANSWER_KEYS:
        if isinstance(data.get(key), str):
            return str(data[key])
    steps = _steps(data)
    root = _str(data.get("rootAgentName"))
    own = [s for s in steps if root is not None and s.get("agentname") == root] or steps
    for step in reversed(own):
        text = _text_of(step.get("content"))
        if text is not None:
            return text
    if own and own[-1].get("content") is not None:
        return json.dumps(own[-1]["content"], ensure_ascii=False, indent=2, default=str)[:MAX_ANSWER_JSON]
    return ""


def _citation(snip: dict[str, Any], position: int) -> n.Citation:
    content = _str(snip.get("content"))
    preview = _str(snip.get("displaytext")) or (content[:300] if content else None)
    title = _str(snip.get("filename")) or _str(snip.get("chunkid")) or f"source {position}"
    return n.Citation(title=title, snippet=preview, url=_str(snip.get("url")), source=_str(snip.get("filetype")))


class OdysseyTranslator:
    """One per reply."""

    def __init__(self) -> None:
        self.request_id = ""

    def __call__(self, event: Event) -> Sequence[n.Neutral]:
        if type(event) is MalformedFrame:
            return (n.Anomaly(f"the answer could not be read: {event.error}"),)
        data = event.data or {}
        if event.event == Name.REQUEST:
            self.request_id = str(data.get("request_id") or "")
            return (n.Started(self.request_id, _str(data.get("conversation_id"))),
                    n.RunStarted(self.request_id, status="running"))
        if event.event == Name.RESPONSE:
            return self._response(data)
        return ()

    def _response(self, data: dict[str, Any]) -> list[n.Neutral]:
        out: list[n.Neutral] = []
        steps = _steps(data)
        if len(steps) > MAX_STEPS:
            out.append(n.Anomaly(f"{len(steps)} steps reported; the first {MAX_STEPS} are shown"))
            steps = steps[:MAX_STEPS]
        root = _str(data.get("rootAgentName"))
        out.extend(self._timeline(steps, root))
        if root is not None:
            out.append(n.AppNamed(root))  # OdysseyAI publishes no agent description: its answers name it
        snips = data.get("sourceSnips")
        if isinstance(snips, list):
            found = [s for s in snips[:MAX_SNIPS] if isinstance(s, dict)]
            if found:
                out.append(n.Citations(tuple(_citation(s, i) for i, s in enumerate(found, 1))))
        follow = data.get("followUps")
        questions = follow.get("questions") if isinstance(follow, dict) else None
        if isinstance(questions, list):
            asked = [q.strip() for q in questions if isinstance(q, str) and q.strip()][:MAX_FOLLOW_UPS]
            if asked:
                out.append(n.Suggestions(tuple(asked)))
        out.append(n.TextReplaced(answer_text(data)))
        out.append(n.RunFinished(self.request_id, "succeeded"))
        return out

    def _timeline(self, steps: list[dict[str, Any]], root: str | None) -> list[n.Neutral]:
        """One node per agent (the root agent first), its steps as rows under it."""
        agents: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        if root is not None and any(s.get("agentname") == root for s in steps):
            agents[root] = []
        for index, step in enumerate(steps):
            agents.setdefault(_str(step.get("agentname")) or root or "agent", []).append((index, step))
        out: list[n.Neutral] = []
        for number, (agent, own) in enumerate(agents.items()):
            agent_run = f"{self.request_id}:agent:{number}"
            agent_id = f"agent:{agent}"
            out.append(n.NodeStarted(agent_run, agent_id, name=agent, type="agent", reported=True))
            for index, step in own:
                step_id = _str(step.get("step_id")) or f"step-{index}"
                kind = _str(step.get("type")) or "step"
                name = _str(step.get("external")) or f"{kind} step"
                run = f"{self.request_id}:step:{index}"
                external = _str(step.get("external"))
                out.append(n.NodeStarted(run, step_id, name=name, type=kind, parent_run_id=agent_run, reported=True))
                out.append(n.NodeFinished(run, step_id, "succeeded", output=step.get("content"),
                                          process_data={"external": external} if external else None,
                                          name=name, type=kind))
            out.append(n.NodeFinished(agent_run, agent_id, "succeeded", name=agent, type="agent"))
        return out
