"""The demo apps: workflows built from realistic Atomemo node types, deterministic (same query,
same stream) except the sampler, which draws per ask as a model does. Each app turns a query
into a Plan; _runs plays it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from typing import Any

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://atomemo-notebook.local/demo")
CREATED_AT = "2026-01-05T09:00:00.000Z"


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclasses.dataclass
class ToolCall:
    tool_name: str
    args: dict[str, Any]
    result: Any  # JSON-able; sent as a JSON string, as the spec's example does


@dataclasses.dataclass
class NodeRun:
    node: str  # node slug within the app
    output: Any = None
    status: str = "succeeded"
    out_ports: list[int] = dataclasses.field(default_factory=lambda: [0])
    error: str | None = None
    tools: list[ToolCall] = dataclasses.field(default_factory=list)
    answer: str | None = None  # streamed as chat_message chunks while this node runs
    children: list[NodeRun] = dataclasses.field(default_factory=list)  # runs inside a Loop
    reasoning: str | None = None  # the model's thinking, streamed before its answer (Dify's reasoning_chunk)
    # A Human Input node: its form {title, content, fields: [{name, type, default}], actions:
    # [{id, title, style}], timeout (s)}, and the runs its answer leads to: after(action, inputs).
    form: dict[str, Any] | None = None
    after: Callable[[str, dict[str, Any]], list[NodeRun]] | None = None


@dataclasses.dataclass
class Plan:
    runs: list[NodeRun]
    status: str = "succeeded"

    @property
    def answer(self) -> str | None:
        parts = [r.answer for r in _walk(self.runs) if r.answer is not None]
        return "".join(parts) if parts else None


def _walk(runs: list[NodeRun]) -> list[NodeRun]:
    out: list[NodeRun] = []
    for run in runs:
        out.append(run)
        out.extend(_walk(run.children))
    return out


@dataclasses.dataclass
class Variable:
    label: str
    variable: str
    type: str  # "string" | "number"
    required: bool = False
    max_length: int | None = None
    hidden: bool = False


@dataclasses.dataclass
class DemoApp:
    slug: str
    name: str
    description: str
    emoji: str
    color: str
    nodes: list[tuple[str, str, str]]  # (slug, name, type), the trigger first
    plan: Callable[[str, dict[str, Any]], Plan]
    variables: list[Variable] = dataclasses.field(default_factory=list)
    examples: list[str] = dataclasses.field(default_factory=list)  # shown as chips in an empty chat
    # (source, target, label) by node slug; empty: the nodes in a line. `inside`: child -> its loop.
    edges: list[tuple[str, str, str | None]] = dataclasses.field(default_factory=list)
    inside: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def id(self) -> str:
        return stable_id(self.slug)

    @property
    def version_id(self) -> str:
        return stable_id(self.slug, "v1")

    @property
    def trigger_id(self) -> str:
        return self.node_id(self.nodes[0][0])

    def node_id(self, slug: str) -> str:
        return stable_id(self.slug, "node", slug)

    def node_names(self) -> dict[str, tuple[str, str]]:
        """node slug -> (name, type)."""
        return {slug: (name, kind) for slug, name, kind in self.nodes}

    def snapshot(self) -> dict[str, Any]:
        nodes: dict[str, Any] = {}
        for slug, name, kind in self.nodes:
            node: dict[str, Any] = {"id": self.node_id(slug), "name": name, "type": kind}
            if slug in self.inside:
                node["parentId"] = self.node_id(self.inside[slug])
            if kind == "chat_trigger":
                node["data"] = {"variables": [
                    {"label": v.label, "variable": v.variable, "type": v.type, "required": v.required,
                     "maxLength": v.max_length, "hidden": v.hidden} for v in self.variables],
                    "examples": list(self.examples)}
            nodes[node["id"]] = node
        pairs = self.edges or [(a[0], b[0], None) for a, b in zip(self.nodes, self.nodes[1:], strict=False)]
        edges = [{"source": self.node_id(a), "target": self.node_id(b), **({"label": label} if label else {})}
                 for a, b, label in pairs]
        return {"nodes": nodes, "edges": edges}

    def wire(self) -> dict[str, Any]:
        """The App object of GET /chat/app/{appId}."""
        version = {
            "id": self.version_id, "appId": self.id, "name": "v1.0",
            "description": "Demo release", "snapshot": self.snapshot(), "screenshot": None,
            "system": False, "createdBy": "atomemo-notebook", "createdAt": CREATED_AT,
            "updatedAt": CREATED_AT,
        }
        return {
            "id": self.id, "name": self.name, "description": self.description, "status": "active",
            "activeVersionId": self.version_id, "activeVersion": version,
            "icon": {"emoji": self.emoji}, "color": self.color,
            "organizationId": stable_id("org"), "teamId": stable_id("team"),
            "createdAt": CREATED_AT, "updatedAt": CREATED_AT,
        }

    def public(self) -> dict[str, str]:
        return {"slug": self.slug, "name": self.name, "app_id": self.id,
                "trigger_id": self.trigger_id}


def query_text(query: Any) -> str:
    if isinstance(query, dict):
        return f"[file: {query.get('filename', 'unnamed')}]"
    return str(query)


def _trigger(query: Any, inputs: dict[str, Any]) -> NodeRun:
    return NodeRun("trigger", output={"message": query_text(query), **inputs})


# -- support assistant: Knowledge Retrieval -> LLM -> Answer ---------------------------------
# A small, fixed help center: each topic has the articles retrieval finds and the answer a
# support assistant would give. A question is matched to the topic whose words it uses most;
# ties go to the earlier topic; no match gets a graceful fallback. Deterministic throughout.


@dataclasses.dataclass(frozen=True)
class Topic:
    name: str
    words: tuple[str, ...]
    articles: tuple[tuple[str, float], ...]
    answer: str


SNIPPET = (
    "You can call the workflow from Python:\n\n"
    "```python\n"
    "from atomemo_notebook import Client\n\n"
    "with Client() as client:  # the key comes from ATOMEMO_API_KEY\n"
    "    for event in client.send_message(app_id=APP, trigger_id=TRIGGER,\n"
    "                                     query=\"Hello\", user_id=\"me\"):\n"
    "        print(event.event)\n"
    "```\n"
)

TOPICS = (
    Topic("pricing", ("price", "pricing", "plan", "plans", "cost", "costs", "cheap", "expensive", "tier",
                      "upgrade", "seat", "seats", "trial"),
          (("Plans and pricing", 0.94), ("Upgrading or downgrading a plan", 0.81), ("Free trial", 0.66)),
          "Here are our current plans:\n\n"
          "| Plan | Price | Seats | Runs / month |\n"
          "|---|---|---|---|\n"
          "| Starter | $9 / month | 1 | 1,000 |\n"
          "| Team | $49 / month | 10 | 20,000 |\n"
          "| Enterprise | Contact sales | Unlimited | Unlimited |\n\n"
          "Every plan starts with a **14-day free trial**, no card needed. You can switch plans at any "
          "time from *Settings → Billing*; upgrades apply at once and are prorated.\n"),
    Topic("api keys", ("key", "keys", "token", "rotate", "rotation", "secret", "credential", "credentials",
                       "revoke", "leaked", "auth", "authentication", "401"),
          (("Creating and rotating API keys", 0.93), ("Keeping keys out of client code", 0.84),
           ("Troubleshooting 401 errors", 0.72)),
          "To rotate an API key:\n\n"
          "1. Open your app, then **Publish → Chat Trigger → API keys**.\n"
          "2. Click **Create key** and copy the new key (it is shown once).\n"
          "3. Deploy it where your backend reads `ATOMEMO_API_KEY`.\n"
          "4. Once traffic uses the new key, **Revoke** the old one.\n\n"
          "Keys belong on your server, never in browser code. A `401 UNAUTHORIZED` answer means the "
          "`X-Api-Key` header is missing, mistyped or revoked.\n\n" + SNIPPET),
    Topic("setup", ("setup", "set", "install", "start", "started", "getting", "begin", "guide", "first",
                    "configure", "publish", "deploy", "onboarding", "how"),
          (("Getting started with workflows", 0.92), ("Publishing a Chat Trigger", 0.87),
           ("Testing a workflow before publishing", 0.71)),
          "Getting a chat workflow running takes a few minutes:\n\n"
          "1. **Create an app** and add a **Chat Trigger** as its first node.\n"
          "2. Add the nodes that do the work (for example *Knowledge Retrieval → LLM → Answer*).\n"
          "3. Try it in the built-in chat panel, then **Publish**.\n"
          "4. Create an API key and call the Chat API from your backend.\n\n" + SNIPPET),
    Topic("billing", ("bill", "billing", "invoice", "invoices", "receipt", "charge", "charged", "refund",
                      "payment", "card", "vat", "tax"),
          (("Invoices and receipts", 0.91), ("Refund policy", 0.83), ("Updating your payment method", 0.77)),
          "Invoices are under **Settings → Billing → Invoices**, one per month, as PDF. To change the card "
          "on file, use *Update payment method* on the same page.\n\n"
          "If you were charged by mistake, reply with the invoice number: refunds for unused months "
          "are issued within **5 business days** to the original payment method.\n"),
    Topic("outages", ("down", "outage", "outages", "status", "slow", "incident", "error", "errors", "503",
                      "500", "timeout", "timeouts", "unavailable", "latency", "broken", "failing"),
          (("System status and incident history", 0.95), ("Retrying failed requests", 0.82),
           ("Resuming a dropped stream", 0.74)),
          "Sorry for the trouble. Current service health is on **status.atomemo.ai**; incidents are "
          "posted there first.\n\n"
          "While we recover, a dropped answer can be **resumed for 2 minutes** with "
          "`GET /chat/messages/{id}/resume_stream`, and `429`/`5xx` answers are safe to retry after the "
          "`Retry-After` delay. This notebook's client does both for you.\n"),
    Topic("account", ("account", "password", "login", "log", "sign", "signin", "email", "sso", "team",
                      "invite", "member", "members", "delete", "2fa"),
          (("Managing your team", 0.88), ("Resetting your password", 0.86), ("Single sign-on (SSO)", 0.7)),
          "You can manage people under **Settings → Team**: invite members by email, set their role, or "
          "remove them. To reset a password, use *Forgot password* on the sign-in page; the link is "
          "valid for one hour. SSO is available on the Enterprise plan.\n"),
)

GREETING = (
    "Hi! I'm the support assistant. I can answer questions about **pricing and plans**, "
    "**getting started**, **API keys**, **billing**, **outages** and **your account**. "
    "What can I help you with?\n"
)
GREETINGS = frozenset({"hi", "hello", "hey", "hallo", "morning", "afternoon", "evening", "good", "there",
                       "thanks", "thank", "you"})

FALLBACK = (
    "I couldn't find an article that matches that exactly. I can help with **pricing and plans**, "
    "**getting started**, **API keys**, **billing and invoices**, **outages and errors**, and "
    "**your account and team**. Could you tell me a bit more about what you're trying to do?\n"
)

LONG_GUIDE_STEPS = (
    "Create the app", "Add a Chat Trigger", "Declare the trigger's variables", "Connect a knowledge base",
    "Tune retrieval", "Add the LLM node", "Write the system prompt", "Add an Answer node",
    "Handle the no-answer branch", "Add an If node for escalation", "Test in the chat panel",
    "Inspect the execution timeline", "Publish a version", "Create an API key", "Call the Chat API",
    "Continue a conversation", "Resume a dropped stream", "Upload files", "Watch usage", "Go live",
)


def support_topic(text: str) -> Topic | None:
    words = re.findall(r"[a-z0-9]+", text.lower())
    best, score = None, 0
    for topic in TOPICS:
        hits = sum(1 for word in words if word in topic.words)
        if hits > score:
            best, score = topic, hits
    return best


def _long_guide() -> str:
    parts = ["Here is the full setup guide, step by step.\n"]
    for number, title in enumerate(LONG_GUIDE_STEPS, 1):
        parts.append(
            f"\n### Step {number}: {title}\n\n"
            f"{title} is step {number} of {len(LONG_GUIDE_STEPS)}. Take your time here: the defaults work "
            f"for most teams, and the options that matter are explained in the help-center article "
            f"linked from the node's settings panel.\n")
    parts.append("\nThat's everything: your workflow is live.\n")
    return "".join(parts)


def _support(query: Any, inputs: dict[str, Any]) -> Plan:
    text = query_text(query)
    lower = text.lower()
    if "long" in lower and re.search(r"guide|setup|set up", lower):
        topic: Topic | None = TOPICS[2]
        answer = _long_guide()  # a long answer, for stop and scroll demos
    else:
        topic = support_topic(text)
        words = set(re.findall(r"[a-z]+", lower))
        answer = topic.answer if topic else GREETING if words and words <= GREETINGS else FALLBACK
    docs = [{"title": t, "score": s} for t, s in (topic.articles if topic else ())]
    return Plan([
        _trigger(query, inputs),
        NodeRun("retrieval", output={"documents": docs, "topic": topic.name if topic else None}),
        NodeRun("llm", output={"text": answer, "usage": {"prompt_tokens": 412 + len(text),
                                                          "completion_tokens": len(answer) // 4}}),
        NodeRun("answer", output={"answer": answer}, answer=answer),
    ])


# -- tool-using agent: AI Agent with tools -> Answer ----------------------------------------

def _agent(query: Any, inputs: dict[str, Any]) -> Plan:
    text = query_text(query)
    order = (re.findall(r"\d{3,}", text) or ["1042"])[0]
    city_match = re.search(r"\bin ([A-Z][a-z]+)", text)
    city = city_match.group(1) if city_match else "Berlin"
    total = round(2 * 19.99 + 4.5, 2)
    tools = [
        ToolCall("lookup_order", {"order_id": f"A-{order}"},
                 {"order_id": f"A-{order}", "status": "shipped", "items": 2, "carrier": "DHL"}),
        ToolCall("get_weather", {"city": city, "units": "metric"},
                 {"city": city, "temperature": 15, "conditions": "light rain"}),
        ToolCall("calculator", {"expression": "2 * 19.99 + 4.5"}, {"value": total}),
    ]
    answer = (
        f"Your order **A-{order}** has shipped with DHL (2 items, total **${total}**).\n\n"
        f"Delivery weather in {city}: 15 °C, light rain, so expect a small delay.\n"
    )
    return Plan([
        _trigger(query, inputs),
        NodeRun("agent", output={"text": answer, "tool_calls": len(tools)}, tools=tools),
        NodeRun("answer", output={"answer": answer}, answer=answer),
    ])


# -- flaky pipeline: Loop (break) around a failing HTTP Request, If -> apology Answer ---------

def _flaky(query: Any, inputs: dict[str, Any]) -> Plan:
    lower = query_text(query).lower()
    attempts = [
        NodeRun("http", status="failed", output=None, out_ports=[],
                error=f"HTTP 503 Service Unavailable from inventory.example.com (attempt {i})")
        for i in (1, 2)
    ]
    loop = NodeRun("loop", status="break", output={"iterations": 2, "reason": "max attempts"},
                   children=attempts)
    if "fail" in lower:
        # No fallback branch: the execution itself fails, with no answer.
        return Plan([_trigger(query, inputs), loop], status="failed")
    apology = (
        "Sorry, the inventory service is not answering right now. "
        "I tried twice; please ask again in a few minutes.\n"
    )
    return Plan([
        _trigger(query, inputs),
        loop,
        NodeRun("check", output={"condition": "http.status == 200", "value": False}, out_ports=[1]),
        NodeRun("apology", output={"answer": apology}, answer=apology),
    ])


# -- sampler: the support assistant, as a model that samples: right most times, not always --

HEDGE = "I am not sure about that one. Please check the help center or ask again.\n"
MISS_RATE = (0.0, 1 / 3, 1 / 2)  # per difficulty (easy, middling, hard): the chance one ask misses
MAX_SAMPLED = 10_000  # questions whose ask count one sampler remembers (a demo, not a store)


def difficulty(text: str) -> int:
    """0 easy, 1 middling, 2 hard: fixed by the question's text, as a hard question stays hard."""
    return int.from_bytes(text.encode()[:64].ljust(4, b"\0")[-4:], "big") % 3


class Sampler:
    """The support answer, except on some asks, drawn independently per ask as a model at
    temperature > 0 samples: an easy question (a third of them, by its text) is always answered,
    a middling one misses with chance 1/3, a hard one with chance 1/2: over questions spread
    evenly, about 72% of asks are answered as the support app answers them (its own misses
    aside) and the rest hedge. Repeats show flaky rows offline; two runs of the same questions
    are exchangeable (an A/A comparison shows no systematic difference). One per server; `seed`
    (ServerConfig.seed, LocalServer(seed=...)) fixes the draws.

    Each draw hashes (seed, question, how many times this sampler was asked it before): the same
    seed gives every question the same sequence of draws whatever order concurrent asks arrive
    in, which a shared random.Random consumed in arrival order would not. The count is only that
    nonce: every draw is a fresh uniform number, so the second run of a question is no likelier
    to miss than the first."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be a whole number or None, got {type(seed).__name__}")
        self.seed = secrets.randbits(64) if seed is None else seed
        self._asks: dict[str, int] = {}
        self._epoch = 0  # bumped when the counts are forgotten, so no draw is ever repeated
        self._lock = threading.Lock()

    def draw(self, text: str) -> float:
        """A fresh uniform number in [0, 1) for this ask of `text`."""
        with self._lock:
            if len(self._asks) >= MAX_SAMPLED and text not in self._asks:
                self._asks.clear()
                self._epoch += 1
            n = self._asks.get(text, 0)
            self._asks[text] = n + 1
            nonce = f"{self.seed}/{self._epoch}/{n}/"
        digest = hashlib.blake2b((nonce + text).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2 ** 64

    def __call__(self, query: Any, inputs: dict[str, Any]) -> Plan:
        text = query_text(query)
        support = _support(query, inputs)
        if self.draw(text) >= MISS_RATE[difficulty(text)]:
            return support
        runs = [*support.runs[:-2], NodeRun("llm", output={"text": HEDGE}),
                NodeRun("answer", output={"answer": HEDGE}, answer=HEDGE)]
        return dataclasses.replace(support, runs=runs)


# -- echo: streams the query back verbatim; custom variables validated ----------------------

def _echo(query: Any, inputs: dict[str, Any]) -> Plan:
    text = query_text(query)
    repeat = int(inputs.get("repeat", 1))
    answer = text * repeat
    return Plan([
        _trigger(query, inputs),
        NodeRun("answer", output={"answer_length": len(answer)}, answer=answer),
    ])


# -- thinker: a model that thinks aloud before it answers (Dify's reasoning_chunk) -------------

def _thinker(query: Any, inputs: dict[str, Any]) -> Plan:
    text = query_text(query)
    thought = (f"The question is {text!r}. I should find what it really asks, check the help center "
               "in my head, and answer in one short paragraph without repeating the question.")
    answer = f"Here is a short answer to: {text}"
    return Plan([
        _trigger(query, inputs),
        NodeRun("llm", output={"text": answer, "usage": {"prompt_tokens": 120, "completion_tokens": 60}},
                reasoning=thought),
        NodeRun("answer", output={"answer": answer}, answer=answer),
    ])


# -- approval: a person approves or rejects before the run goes on (Dify's Human Input) --------

APPROVAL_TIMEOUT = 600.0  # seconds a form waits for its answer


def _approval(query: Any, inputs: dict[str, Any]) -> Plan:
    text = query_text(query)
    form = {"title": "Review request", "timeout": float(inputs.get("timeout") or APPROVAL_TIMEOUT),
            "content": f"## Please review\n\nThe user asked: **{text}**\n\n- Write a comment below\n"
                       "- Pick a priority\n\nComment: {{#$output.comment#}}\n\nPriority: {{#$output.priority#}}",
            "fields": [{"name": "comment", "type": "paragraph", "default": "looks fine"},
                       {"name": "priority", "type": "text_input", "default": None}],
            "actions": [{"id": "approve", "title": "Approve", "style": "primary"},
                        {"id": "reject", "title": "Reject", "style": "default"}]}

    def after(action: str, given: dict[str, Any]) -> list[NodeRun]:
        if action == "approve":
            said = f"Approved with priority {given.get('priority') or 'normal'}: {given.get('comment')}"
            return [NodeRun("approved", output={"answer": said}, answer=said)]
        if action == "reject":
            said = f"Rejected: {given.get('comment')}"
            return [NodeRun("rejected", output={"answer": said}, answer=said)]
        said = "Nobody reviewed the request in time: it was not sent."
        return [NodeRun("expired", output={"answer": said}, answer=said)]

    before = f"Sending your request for review: {text}\n"
    return Plan([_trigger(query, inputs), NodeRun("before", output={"answer": before}, answer=before),
                 NodeRun("review", output={}, form=form, after=after)])


DEMO_APPS: dict[str, DemoApp] = {
    app.slug: app
    for app in [
        DemoApp(
            "support", "Support Assistant",
            "Answers product questions from the help center (Knowledge Retrieval -> LLM -> Answer).",
            "🛟", "#2563EB",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("retrieval", "Search help center", "knowledge_retrieval"),
             ("llm", "Draft answer", "llm"),
             ("answer", "Reply", "answer")],
            _support,
            examples=["What does it cost?", "How do I rotate my API key?", "Where are my invoices?",
                      "Give me the long setup guide"],
        ),
        DemoApp(
            "agent", "Order Agent",
            "An AI Agent that looks up orders, weather and sums with tools.",
            "🤖", "#7C3AED",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("agent", "Order agent", "ai_agent"),
             ("answer", "Reply", "answer")],
            _agent,
            examples=["Where is order 1042? I'm in Berlin.", "Has order 2231 shipped to me in Lima?"],
        ),
        DemoApp(
            "flaky", "Flaky Pipeline",
            "An inventory check whose HTTP Request fails; an If routes to an apology. "
            "Queries containing 'fail' end the execution failed.",
            "🧯", "#DC2626",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("loop", "Retry loop", "loop"),
             ("http", "Fetch inventory", "http_request"),
             ("check", "Request ok?", "if"),
             ("apology", "Apology", "answer"),
             ("report", "Inventory report", "answer")],
            _flaky,
            examples=["Is the blue mug in stock?", "Check the inventory and fail"],
            # The loop retries the request inside it; the If sends a failure to the apology.
            edges=[("trigger", "loop", None), ("loop", "http", "each try"), ("loop", "check", "done"),
                   ("check", "report", "true"), ("check", "apology", "false")],
            inside={"http": "loop"},
        ),
        DemoApp(
            "sampler", "Sampling Assistant",
            "The support assistant as a model that samples: the same question is answered right most "
            "times, not always (for evaluate(..., repeats=k)).",
            "🎲", "#D97706",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("retrieval", "Search help center", "knowledge_retrieval"),
             ("llm", "Draft answer", "llm"),
             ("answer", "Reply", "answer")],
            Sampler(),  # one per server: demo_apps(seed) makes it
            examples=["What does it cost?", "How do I rotate my API key?"],
        ),
        DemoApp(
            "thinker", "Thinking Assistant",
            "A model that thinks before it answers: its thinking streams apart from the answer "
            "(Dify's reasoning_chunk; the other systems' voices do not carry it).",
            "💭", "#0891B2",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("llm", "Think and draft", "llm"),
             ("answer", "Reply", "answer")],
            _thinker,
            examples=["Why is the sky blue?"],
        ),
        DemoApp(
            "approval", "Refund Approval",
            "A person approves or rejects the request before the run goes on (Dify's Human Input: the "
            "run pauses with a form; other systems take the first action with its defaults).",
            "✋", "#B45309",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("before", "Before review", "answer"),
             ("review", "Review request", "human_input"),
             ("approved", "Approved", "answer"),
             ("rejected", "Rejected", "answer"),
             ("expired", "Expired", "answer")],
            _approval,
            variables=[Variable("Form timeout (s)", "timeout", "number")],
            examples=["please approve my refund of 42 EUR"],
            edges=[("trigger", "before", None), ("before", "review", None), ("review", "approved", "approve"),
                   ("review", "rejected", "reject"), ("review", "expired", "timeout")],
        ),
        DemoApp(
            "echo", "Echo",
            "Streams the query back verbatim; optional variables tone (text) and repeat (number).",
            "🔁", "#059669",
            [("trigger", "Chat Trigger", "chat_trigger"),
             ("answer", "Echo", "answer")],
            _echo,
            variables=[
                Variable("Tone", "tone", "string", max_length=20),
                Variable("Repeat", "repeat", "number"),
            ],
            examples=["Hello, echo!", "Markdown: **bold**, `code` and a [link](https://example.com)"],
        ),
    ]
}


def demo_apps(seed: int | None = None) -> dict[str, DemoApp]:
    """The demo apps of one server: DEMO_APPS, with a sampler of its own (its draws seeded by
    `seed`, or by fresh randomness when None), so no ask on one server moves another's draws."""
    return {slug: dataclasses.replace(app, plan=Sampler(seed)) if isinstance(app.plan, Sampler) else app
            for slug, app in DEMO_APPS.items()}


MAX_REPEAT = 1_000_000
MAX_ANSWER_CHARS = 1_000_000  # what one run may stream: bounds every input that multiplies work


def validate_inputs(app: DemoApp, inputs: Any, query: Any = "") -> str | None:
    """The reason `inputs` break the trigger's custom variables (or would make the run's work
    unbounded), or None when they are fine."""
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        return "inputs must be an object"
    declared = {v.variable: v for v in app.variables}
    for key in inputs:
        if key not in declared:
            return f"unknown variable {key!r}" + (
                f"; this trigger declares {sorted(declared)}" if declared else
                "; this trigger declares no variables")
    for var in app.variables:
        if var.variable not in inputs:
            if var.required:
                return f"variable {var.variable!r} is required"
            continue
        value = inputs[var.variable]
        if var.type == "string":
            if not isinstance(value, str):
                return f"variable {var.variable!r} must be a string, got {json.dumps(value)}"
            if var.max_length is not None and len(value) > var.max_length:
                return f"variable {var.variable!r} is longer than {var.max_length} characters"
        elif var.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"variable {var.variable!r} must be a number, got {json.dumps(value)}"
            if var.variable == "timeout" and not 0 < value <= 86_400:
                return "variable 'timeout' must be a number of seconds above 0, at most 86400"
            if var.variable == "repeat":
                if not (1 <= value <= MAX_REPEAT and value == int(value)):
                    return f"variable 'repeat' must be a whole number from 1 to {MAX_REPEAT}"
                size = len(query_text(query)) * int(value)
                if size > MAX_ANSWER_CHARS:
                    return (f"repeat={int(value)} would make an answer of {size:,} characters; "
                            f"the limit is {MAX_ANSWER_CHARS:,}")
    return None
