"""Write the course notebooks from the cells below, run them top to bottom, save them with
their outputs, clean: no saved widget state and no widget-view outputs (which mean nothing
without a kernel); each widget's static HTML copy of its conversation stays, so the
notebooks read well on GitHub and in nbconvert.
Run after changing a notebook's text: `.venv-test/bin/python scripts/make_notebooks.py`.
(The notebooks themselves are what nbval checks; this script is only how they are written.)"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1] / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT\n"

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01-quickstart": [
        ("md", """# Quickstart: chat with a workflow, watch it run

`ChatWidget()` with no key starts an **embedded Atomemo-compatible server** in this kernel and
opens a demo app: no key, no network. Type a question into the widget below (Enter sends,
Esc stops), or ask from Python. The side panel shows each execution as a timeline of nodes;
the *Events* tab shows the raw stream."""),
        ("code", """from atomemo_notebook import ChatWidget

widget = ChatWidget()  # offline demo server: the "Support Assistant" app
widget"""),
        ("md", "Asking from Python streams into the same widget. `ask` returns at once; `wait()` blocks until the answer is complete."),
        ("code", CHECK + """reply = widget.ask("How much does it cost?")
reply.wait()
print(reply.text)
print(f"{reply.status} · first token {reply.time_to_first_token * 1000:.0f} ms · "
      f"whole answer {reply.total_time:.2f} s")"""),
        ("md", "Every node run (and every tool call) is a row of the timeline, ready for pandas:"),
        ("code", CHECK + """widget.chat.timeline_df()[["node_name", "node_type", "status"]]"""),
        ("md", "The conversation so far, one row per message:"),
        ("code", CHECK + """widget.chat.history_df()[["dialogue_count", "depth", "status", "query_text"]]"""),
        ("md", """A static snapshot of the transcript and timeline: this is what a saved notebook shows
on GitHub or in nbconvert, where no kernel runs the widget."""),
        ("code", "widget.snapshot()"),
        ("md", """## The cell magic

`%%atomemo` sends the cell's text as the question; the next `%%atomemo` cell continues the
same conversation."""),
        ("code", "%load_ext atomemo_notebook"),
        ("code", """%%atomemo --demo echo
Hello from a cell magic!"""),
    ],
    "02-debugging-a-failing-workflow": [
        ("md", """# Debugging a failing workflow: the graph and the comparison

The **Flaky Pipeline** demo app checks inventory over HTTP. The request fails; a Loop retries it
and breaks; an If routes to an apology. Queries containing "fail" make the whole execution fail.
The **Graph** tab shows *where* the run went; the **Compare** tab how two runs differ."""),
        ("code", """from atomemo_notebook import ChatWidget

flaky = ChatWidget(demo="flaky")
flaky"""),
        ("code", CHECK + """reply = flaky.ask("Is the blue kettle in stock?")
reply.wait()
print(reply.status)
print(reply.text)"""),
        ("md", """The answer looks fine. Open the **Graph** tab: *Fetch inventory* ran twice inside the loop
(badged ×2) and failed both times (red, marked ✕); the If took its `false` branch to *Apology*;
*Inventory report* is dimmed: it did not run. Click a node for its inputs, output and error.
The graph is the app's own (Atomemo publishes it in the app's snapshot):"""),
        ("code", CHECK + """graph = flaky.header["graph"]
names = {node["id"]: node["name"] for node in graph["nodes"]}
for edge in graph["edges"]:
    print(f"{names[edge['source']]:>16} -> {names[edge['target']]:<17} {edge['label'] or ''}")"""),
        ("md", "The same facts from the timeline records:"),
        ("code", CHECK + """timeline = flaky.chat.timeline_df()
timeline[["node_name", "node_type", "status", "error"]]"""),
        ("md", """Now edit the question so that the execution fails, and compare the two versions: in the
**Compare** tab (the answers word by word, the node runs aligned; runs in only one version shown
as such), or from Python:"""),
        ("code", CHECK + """bad = flaky.edit(reply.message_id, "Is the blue kettle in stock? fail")
bad.wait()
print(bad.status, "| execution:", bad.execution.status, "| answer:", repr(bad.text))
flaky.chat.compare(reply.message_id, bad.message_id)[["kind", "node_name", "ran_in", "status_a", "status_b", "output_differs"]]"""),
        ("md", "The raw events, as the inspector tab shows them:"),
        ("code", CHECK + """flaky.chat.events_df()["event"].value_counts().sort_index()"""),
        ("md", "The static snapshot (what a saved notebook shows without a kernel) holds the graph and the comparison too:"),
        ("code", "flaky.snapshot()"),
    ],
    "03-history-branches-and-pandas": [
        ("md", """# History, branches and pandas

Regenerating or editing a message does not overwrite it: the server keeps a **message tree**.
Here the plain Python `Client` and `Chat` do the talking, against an embedded server."""),
        ("code", """from atomemo_notebook import Chat, Client
from atomemo_notebook.server import LocalServer

server = LocalServer(chunk_delay=0, node_delay=0).start()
client = Client(server.api_key, base_url=server.base_url)
app = server.app("support")
chat = Chat(client, app_id=app["app_id"], trigger_id=app["trigger_id"], user_id="analyst")"""),
        ("md", "Three questions, then a regenerated answer to the second and an edited third question:"),
        ("code", CHECK + """first = chat.ask("Hello!")
second = chat.ask("What does it cost?")
third = chat.ask("Is there a free trial?")
again = chat.regenerate(second.message_id)          # a sibling of the second message
edited = chat.edit(third.message_id, "Is there a discount for students?")
print([r.status for r in chat.replies])"""),
        ("md", "`history()` loads the tree from the server. `parent_id` draws the tree; `sibling_index` tells versions apart."),
        ("code", CHECK + """chat.history()
history = chat.history_df()
ids = {mid: f"M{i + 1}" for i, mid in enumerate(history["message_id"])}  # short names for reading
view = history.assign(message=history["message_id"].map(ids), parent=history["parent_id"].map(ids))
view[["message", "parent", "dialogue_count", "depth", "sibling_index", "sibling_count", "query_text"]]"""),
        ("md", "Some analysis: answer lengths per depth, and which questions were asked more than once."),
        ("code", CHECK + """history.assign(answer_chars=history["answer"].str.len()).groupby("depth")["answer_chars"].agg(["count", "max"])"""),
        ("code", CHECK + """history[history["sibling_count"] > 1][["query_text", "sibling_index"]]"""),
        ("code", CHECK + """timeline = chat.timeline_df()
timeline.groupby("node_name")["status"].value_counts().unstack(fill_value=0)"""),
        ("code", """client.close()
server.close()"""),
    ],
    "04-files": [
        ("md", """# Files: upload by URL, or from a local file

Atomemo takes a file as a message: upload it (3 steps: token, PUT to the storage host, download
URL) or let the server fetch it by URL, then send the returned `FileRef` as the query. The key
never goes to the storage host."""),
        ("code", """import tempfile
from pathlib import Path

from atomemo_notebook import Chat, Client
from atomemo_notebook.server import LocalServer

server = LocalServer(allow_loopback_urls=True).start()
client = Client(server.api_key, base_url=server.base_url)
echo = server.app("echo")
folder = Path(tempfile.mkdtemp())
_ = (folder / "prices.csv").write_text("plan,price\\nStarter,9\\nTeam,49\\n")"""),
        ("md", "A local file, through the 3-step upload:"),
        ("code", CHECK + """ref = client.upload_file(folder / "prices.csv")
print(ref.filename, ref.mime_type, ref.size, "bytes")
print(sorted(ref.to_wire()))"""),
        ("md", "By URL: the server fetches it (here from its own storage link, since this demo runs offline):"),
        ("code", CHECK + """by_url = client.upload_url(ref.remote_url)
print(by_url.filename, by_url.size, "bytes")"""),
        ("md", "Sent as a message: the echo app answers with what it received."),
        ("code", CHECK + """chat = Chat(client, app_id=echo["app_id"], trigger_id=echo["trigger_id"], user_id="files")
print(chat.ask(ref).text)"""),
        ("md", "In the widget, `attach()` uploads in the kernel (the key stays here) and shows a file chip; the next message sends it."),
        ("code", """from atomemo_notebook import ChatWidget

widget = ChatWidget(echo["app_id"], echo["trigger_id"], "files", api_key=server.api_key, base_url=server.base_url)
widget.attach(folder / "prices.csv")
widget"""),
        ("code", CHECK + """reply = widget.ask("")  # empty text: the attached file is the message
reply.wait()
print(reply.text)"""),
    ],
    "05-record-and-replay": [
        ("md", """# Record & replay

Save a session's raw event log (JSON Lines, arrival times included, never the key), then
replay it with no server: for teaching, demos and bug reports."""),
        ("code", """import tempfile
from pathlib import Path

from atomemo_notebook import Chat, Client, replay
from atomemo_notebook.server import LocalServer

log = Path(tempfile.mkdtemp()) / "session.jsonl"
with LocalServer() as server, Client(server.api_key, base_url=server.base_url) as client:
    app = server.app("agent")
    chat = Chat(client, app_id=app["app_id"], trigger_id=app["trigger_id"], user_id="recorder")
    live = chat.ask("Where is order 2024, shipping to Lisbon?")
    chat.save_events(log)"""),
        ("code", CHECK + """print(live.status, "|", len(live.events), "events |", len(live.tool_calls), "tool calls")
print(log.read_text().splitlines()[0][:60])"""),
        ("md", "The server is gone. Replay the log four times faster than it happened:"),
        ("code", CHECK + """(again,) = replay(log, speed=4.0)
print(again.status, again.text == live.text, [t.tool_name for t in again.tool_calls])"""),
        ("md", "A replayed reply is a reply: the same records, the same DataFrames."),
        ("code", CHECK + """import pandas as pd

from atomemo_notebook import TIMELINE_COLUMNS, timeline_records, to_dataframe

to_dataframe(timeline_records([again]), TIMELINE_COLUMNS)[["kind", "node_name", "tool_name", "status"]]"""),
    ],
    "06-the-real-atomemo-cloud": [
        ("md", """# The real Atomemo cloud

Everything in the other notebooks works against https://server.atomemo.ai/api too. Set
`ATOMEMO_API_KEY`, `ATOMEMO_APP_ID` and `ATOMEMO_TRIGGER_ID` (and optionally
`ATOMEMO_USER_ID`) in the environment the kernel starts from; the key stays in the kernel and
is never shown. Without them this notebook says so and skips."""),
        ("code", CHECK + """import os

needed = ["ATOMEMO_API_KEY", "ATOMEMO_APP_ID", "ATOMEMO_TRIGGER_ID"]
missing = [name for name in needed if not os.environ.get(name)]
configured = not missing
print("configured" if configured else "Skipping the cloud cells: set " + ", ".join(missing))"""),
        ("code", """from atomemo_notebook import ChatWidget, Client

if configured:
    with Client() as client:  # key and base URL from the environment
        app = client.get_app(os.environ["ATOMEMO_APP_ID"])
        print(app.name, app.active_version.name if app.active_version else "")
    cloud = ChatWidget()  # app, trigger and user from the environment
    display(cloud)"""),
        ("code", """if configured:
    reply = cloud.ask("Hello! What can you do?")
    reply.wait()
    print(reply.status)
    display(cloud.chat.timeline_df())"""),
    ],
    "07-other-systems": [
        ("md", """# One widget, other systems: Atomemo, Dify, Pipelit and OdysseyAI

The same widget speaks **Dify** (its advanced-chat service API, SSE), **Pipelit** (REST and
one WebSocket) and **OdysseyAI** (one blocking JSON answer) as well as Atomemo.
`connect(system)` returns the `Chat` you know; `ChatWidget(system="dify")` the widget. With no
key, the embedded server plays Dify too: the same demo workflows under `/v1`, with Dify's
auth, event names and error bodies (Pipelit's under `/api/v1` and `/ws/`, OdysseyAI's under `/odyssey`). Ask Atomemo and
Dify the same question and compare."""),
        ("code", """import ipywidgets
import pandas as pd

from atomemo_notebook import ChatWidget, connect

atomemo = ChatWidget(demo="support")
dify = ChatWidget(system="dify", demo="support")
ipywidgets.HBox([atomemo, dify], layout=ipywidgets.Layout(width="100%"))"""),
        ("md", "One question to each; both stream into their widget above."),
        ("code", CHECK + """question = "How do I rotate my API key?"
replies = {"atomemo": atomemo.ask(question), "dify": dify.ask(question)}
for name, reply in replies.items():
    reply.wait()
    print(f"{name:8} {reply.status} · {len(reply.nodes)} nodes · {len(reply.text)} characters")
print("same answer:", replies["atomemo"].text == replies["dify"].text)"""),
        ("md", """The timelines, side by side: the same workflow, each system's own node types (Dify calls
the trigger `start` and writes `knowledge-retrieval`)."""),
        ("code", CHECK + """columns = ["node_name", "node_type", "status"]
pd.concat({"atomemo": atomemo.chat.timeline_df()[columns], "dify": dify.chat.timeline_df()[columns]}, axis=1)"""),
        ("md", """What each system can do decides which controls the widget shows. Dify's service API takes
no parent message, so there is no regenerate or edit there, and the widget says why; its Stop
cancels the run on the server, where Atomemo's only stops listening."""),
        ("code", CHECK + """fields = ["token_streaming", "stop", "branching", "resume", "citations", "suggestions"]
pd.DataFrame({name: {f: getattr(w.chat.capabilities, f) for f in fields}
              for name, w in {"atomemo": atomemo, "dify": dify}.items()})"""),
        ("md", "Dify's extras: the sources its retrieval found (shown under the answer), and suggested next questions (chips)."),
        ("code", CHECK + """answer = replies["dify"]
print("sources:", [c.title for c in answer.citations])
print("next:", answer.suggestions)
print("tokens:", answer.usage.total_tokens if answer.usage else None)"""),
        ("md", "Asking to branch where a system cannot is a clear error, not a silent new thread:"),
        ("code", CHECK + """chat = connect("dify", demo="echo")
first = chat.ask("one")
try:
    chat.regenerate(first.message_id)
except ValueError as why:
    print(why)"""),
        ("md", """## Pipelit: the nodes light up, the answer comes whole

Pipelit starts an execution with one REST call and reports everything else over one
WebSocket: each node's status as it changes, and the final answer at the end (no answer tokens).
The widget opens the socket before it asks, so no node event is missed; the answer shows
"working" until the whole answer arrives. Ask it below and watch the timeline light up."""),
        ("code", """pipelit = ChatWidget(system="pipelit", demo="agent")
pipelit"""),
        ("code", CHECK + """reply = pipelit.ask("Where is order 1042? I'm in Berlin.")
reply.wait()
print(reply.status, "·", reply.text[:60])
pipelit.chat.timeline_df()[["kind", "node_name", "node_type", "tool_name", "status"]]"""),
        ("md", """The agent's tool calls are nested under it (Pipelit reports them as the tool node's status,
with the agent as parent). Pipelit keeps one conversation per user and workflow and takes no
parent message, so there is no regenerate or edit, and "New chat" clears the history on the
server, after a second click to confirm:"""),
        ("code", CHECK + """caps = pipelit.chat.capabilities
print(caps.branching_reason)
print("new chat means:", caps.new_conversation)"""),
        ("md", """## OdysseyAI: one answer, with its steps, sources and follow-ups

OdysseyAI answers with one JSON document, all at once: the widget shows "working" with the
time elapsed until it comes (Stop stops waiting; the server may still finish). Its steps become
the timeline, grouped by the agent that did them and marked as reported after the fact (there
are no times to draw); its source snippets become numbered citations under the answer, and
its follow-ups chips that ask them."""),
        ("code", """odyssey = ChatWidget(system="odyssey", demo="support")
odyssey"""),
        ("code", CHECK + """reply = odyssey.ask("How do I rotate my API key?")
reply.wait()
print(reply.status, "·", reply.suggestions)
odyssey.chat.timeline_df()[["node_name", "node_type", "status", "reported", "duration_ms"]]"""),
        ("md", "The sources, one row per citation, numbered as under the answer:"),
        ("code", CHECK + """odyssey.chat.sources_df()[["position", "title", "url"]]"""),
        ("md", """## A real Dify

Set `DIFY_API_KEY` (the app's key) and `DIFY_BASE_URL` (default `https://api.dify.ai/v1`) in
the kernel's environment, then `connect("dify")` or `ChatWidget(system="dify")`; the key stays
in the kernel. The embedded server prints its Dify base URL and each demo app's key with
`atomemo-notebook serve`.

## A real Pipelit

Set `PIPELIT_API_KEY`, `PIPELIT_BASE_URL` (the server's root, e.g. `http://localhost:8000`) and
`PIPELIT_WORKFLOW` (the workflow's slug), then `connect("pipelit")` or
`ChatWidget(system="pipelit")`. The key goes in the `Authorization` header of REST calls and
in the WebSocket's `token` query parameter as Pipelit expects; it is never logged or shown.

## A real OdysseyAI

Set `ODYSSEY_API_KEY`, `ODYSSEY_BASE_URL` (the API's address: there is no default, so a key goes
only where you say), `ODYSSEY_WORKSPACE_ID`, and optionally `ODYSSEY_AGENT_ID` and
`ODYSSEY_USER_ID`, then `connect("odyssey")` or `ChatWidget(system="odyssey")`."""),
    ],
    "08-evaluate-a-workflow": [
        ("md", """# Evaluate a workflow over a data set

Chatting with a workflow finds the first bug; asking it a few dozen questions at once shows how
it behaves. `evaluate()` asks every row (each in its own conversation, a few at a time), scores
the answers, and fills a table in live while the kernel stays free. Here: the offline demo apps
and the data set shipped with the package."""),
        ("code", """import tempfile
from pathlib import Path

import pandas as pd

from atomemo_notebook import compare, connect, contains, demo_dataset, evaluate, latency_under

questions = pd.DataFrame(demo_dataset("support"))
questions.head()"""),
        ("md", """Ask them all, eight at a time. `contains` checks the expected keywords (`|` separates
keywords that must all appear); `latency_under(2)` whether the answer took at most two seconds.
The results show as a live table: click a row to see its answer and timeline."""),
        ("code", """support = evaluate(connect("atomemo", demo="support", asynchronous=True), questions, query="question",
                   scorers=[contains, latency_under(2.0)], concurrency=8)
support.wait()
support"""),
        ("code", CHECK + """support.df[["query", "status", "score_contains"]]"""),
        ("md", "The rows whose answer misses a keyword are findings (the demo cannot answer everything):"),
        ("code", CHECK + """support.df.loc[~support.df["score_contains"].astype(bool), ["query", "expected"]]"""),
        ("md", "Per node: how often it ran, how often it failed, its median and 95th percentile duration; and the scores' means:"),
        ("code", """summary = support.summary()
summary"""),
        ("code", """nodes = summary[summary["kind"] == "node"]
nodes.plot.barh(x="name", y=["p50_ms", "p95_ms"], title="Node duration (ms)", figsize=(6, 2.5));"""),
        ("md", """## A workflow that fails

The *flaky* app calls an inventory service in a loop; questions with "fail" in them make it fail
at its `Fetch inventory` node. The table marks the failed rows and names the node."""),
        ("code", """flaky = evaluate(connect("atomemo", demo="flaky", asynchronous=True), demo_dataset("flaky"), query="question",
                 scorers=[contains], concurrency=4)
flaky.wait()
flaky"""),
        ("code", CHECK + """flaky.df[["query", "status", "failed_node"]]"""),
        ("md", "Drill down into the first failed run: every node run of it, from the timeline records."),
        ("code", CHECK + """row = flaky.failed()[0]
flaky.timeline_df.query("row == @row")[["node_name", "node_type", "status", "error"]]"""),
        ("md", """## Resume, and compare

With `cache=`, each finished row is saved as it ends: a second run asks only what is not there
yet (`rerun_failed=True` asks the failures again), and `load_evaluation()` rebuilds everything
offline. `compare()` sets two runs of the same rows side by side."""),
        ("code", CHECK + """cache = Path(tempfile.mkdtemp()) / "flaky.jsonl"
first = evaluate(connect("atomemo", demo="flaky", asynchronous=True), demo_dataset("flaky"), query="question",
                 cache=cache).wait()
again = evaluate(connect("atomemo", demo="flaky", asynchronous=True), demo_dataset("flaky"), query="question",
                 cache=cache).wait()
print("asked again:", int((~again.df["cached"]).sum()), "of", len(again.df))
compare(first, again)[["query", "status_a", "status_b", "answer_changed"]]"""),
        ("md", """## Is a difference real? Run, change the app version, run again, read the verdict

A workflow with a model in it answers differently each time, so one run per question cannot say
whether a change made it better or worse. The loop that answers it: **run** the questions against
the app, **change the app version** (a new prompt, another model), **run again**, and **read the
verdict** of the two runs compared.

The embedded server cannot publish a new version of an app: each demo app has one. So here two
demo apps play the two versions: the *Support Assistant* (`support`) is the version in use, and the
*Sampling Assistant* (`sampler`) **stands for the changed version**: the same workflow with a
cheaper model that *samples*, answering right most times, not always (each ask drawn afresh). With
a real Atomemo you would publish the new version and run the same cell again, unchanged.

The sampler draws on the server. `LocalServer(seed=0)` is a server of our own whose draws are the
same every time this notebook runs: the verdicts below are the ones you will read too (the shared
demo server that `connect(demo=...)` starts draws afresh each time)."""),
        ("code", """from atomemo_notebook.server import LocalServer

server = LocalServer(seed=0).start()


def app(version):  # the app under test; the two demo apps stand for its two versions
    return connect("atomemo", **server.demo("atomemo", version), asynchronous=True)"""),
        ("md", """**1. Run.** `repeats=3` asks each question three times, each its own conversation:"""),
        ("code", CHECK + """before = evaluate(app("support"), questions, query="question", scorers=[contains], repeats=3,
                  concurrency=8).wait()
print(f"{len(before.df)} asks, {len(before.flaky())} flaky rows")"""),
        ("md", """**2. Change the app version** (here: the app that stands for it), and **3. run again**, the
same questions:"""),
        ("code", CHECK + """after = evaluate(app("sampler"), questions, query="question", scorers=[contains], repeats=3,
                 concurrency=8).wait()
after.by_row()[["row", "query", "asks", "pass_rate_contains", "flaky"]].head(8)"""),
        ("md", """`by_row()` lists the flaky rows first: their three answers disagree. The summary gives each
score's mean with a 95% interval (rows resampled with their repeats), and pass@k / pass^k: the
chance that one of three asks passes, and that all three do."""),
        ("code", CHECK + """after.summary().query("kind in ['score', 'pass@k', 'pass^k']")[["kind", "name", "mean", "mean_low", "mean_high"]]"""),
        ("md", """**4. Read the verdict.** `compare()` pairs the rows and opens with a verdict, one line per
measure: the difference b - a with its 95% interval and, for a pass/fail score, the rows that
flipped with the exact McNemar test (a row passes when all its repeats pass):"""),
        ("code", CHECK + """verdict = compare(before, after)
print(verdict.verdict[0])
print(len(verdict.regressed()), "rows regressed,", len(verdict.improved()), "improved")"""),
        ("md", """The whole verdict adds latency and cost lines. Timing is not seeded: those lines change from
run to run, within their intervals."""),
        ("code", """print(verdict)"""),
        ("md", """The rows that regressed come first (each score the mean of the row's three asks: those are
the verdict's broken rows); `to_html()` writes the verdict, those rows and a latency plot
as one static page for a pull request or a wiki."""),
        ("code", """verdict.regressed()[["row", "query", "score_contains_a", "score_contains_b"]].head()"""),
        ("md", """Shown on its own, a comparison is that verdict above its rows, the regressions first: click a
row (or press Enter on it) to see both runs side by side, the answers word by word and the node
runs aligned, as the chat's **Compare** tab shows two replies. `open()` shows it with a row open:"""),
        ("code", """verdict.open(int(verdict.regressed().index[0]))"""),
        ("code", """report = verdict.to_html(Path(tempfile.mkdtemp()) / "comparison.html")
print(report.name, report.stat().st_size > 0)"""),
        ("md", """Is a verdict just chance? Run the changed version once more and compare it with itself (an A/A
comparison): new draws, other rows flaky, yet no clear difference. A 95% interval misses a
difference of 0 one time in twenty by chance alone, so a verdict that matters is one far from 0,
with many rows flipped one way."""),
        ("code", CHECK + """again = evaluate(app("sampler"), questions, query="question", scorers=[contains], repeats=3,
                 concurrency=8).wait()
print("flaky rows, first run:", after.flaky())
print("flaky rows, this run: ", again.flaky())
print(compare(after, again).verdict[0])"""),
        ("code", """server.close()"""),
    ],
    "09-traces-out": [
        ("md", """# Traces out

What you watch here can go, in one call, to the tracing tool your team uses (Arize Phoenix,
Langfuse, Jaeger, Grafana Tempo): every run as OpenTelemetry spans. This notebook stays offline:
it makes the spans of demo runs with `to_spans` and shows them as tables; sending them is one
more line, shown at the end. It needs the `otel` extra: `pip install 'atomemo-notebook[otel]'`."""),
        ("code", """import pandas as pd

from atomemo_notebook import connect, to_spans

chat = connect("dify", demo="agent", user_id="ana")
reply = chat.ask("Where is order 1042? I'm in Berlin.")
spans = to_spans(chat)
len(spans)"""),
        ("md", """One trace per run: a root span for the workflow run, a child for each node run, and the
agent's tool calls under the agent. Each span has its OpenInference kind (what Phoenix shows)
and its status:"""),
        ("code", CHECK + """def table(spans):
    names = {s.context.span_id: s.name for s in spans}
    return pd.DataFrame([{"span": s.name, "kind": s.attributes["openinference.span.kind"],
                          "parent": names.get(s.parent.span_id) if s.parent else "",
                          "status": s.status.status_code.name} for s in spans])


table(spans)"""),
        ("md", "Each span keeps the node run's own start and end:"),
        ("code", """start = spans[0].start_time
pd.DataFrame([{"span": s.name, "start_ms": (s.start_time - start) / 1e6,
               "duration_ms": (s.end_time - s.start_time) / 1e6} for s in spans])"""),
        ("md", "A tool call carries its name, call id, arguments and result (OTel GenAI attributes):"),
        ("code", CHECK + """tool = next(s for s in spans if s.name == "execute_tool lookup_order")
{k: v for k, v in tool.attributes.items() if k.startswith("gen_ai.")}"""),
        ("md", """The root carries the conversation (`session.id`), the user, the question and the answer:"""),
        ("code", CHECK + """root = spans[0]
{k: root.attributes[k] for k in ("session.id", "user.id", "input.value", "gen_ai.operation.name")}"""),
        ("md", """Trace and span ids are derived from the execution's and the node runs' ids: making (or
sending) the spans of the same run again gives the same ids, so a tracing tool keeps one copy."""),
        ("code", CHECK + """print([s.context.span_id for s in to_spans(chat)] == [s.context.span_id for s in spans])"""),
        ("md", """## A run that fails

The *flaky* app retries a failing HTTP request in a loop: the requests sit under their loop,
and each failed span has status ERROR with its message, as does the run."""),
        ("code", CHECK + """with connect("atomemo", demo="flaky") as flaky:
    flaky.ask("Check the inventory and fail")
    failing = to_spans(flaky)
table(failing).assign(message=[s.status.description for s in failing])"""),
        ("md", """## What leaves the kernel

A `redact=` function sees every attribute whole before anything is sent (returning `None`
leaves it out); any API key this process knows is replaced by `[redacted]`; values are cut to
`max_value` characters."""),
        ("code", CHECK + """def hide_orders(key, value):
    if key == "user.id":
        return None
    return value.replace("1042", "****") if isinstance(value, str) else value


safe = to_spans(chat, redact=hide_orders, max_value=60)
{k: safe[0].attributes.get(k) for k in ("user.id", "input.value")}"""),
        ("md", """## Send them

One call sends every run of the session over OTLP/HTTP (not run here: it needs a receiver).

```python
# Arize Phoenix: pip install arize-phoenix; phoenix serve
chat.export_spans("http://127.0.0.1:6006")

# Langfuse: the project's public and secret key, as Basic auth
import base64
auth = base64.b64encode(b"pk-lf-...:sk-lf-...").decode()
chat.export_spans("https://cloud.langfuse.com/api/public/otel", headers={"Authorization": f"Basic {auth}"})

# Jaeger, Tempo or an OpenTelemetry Collector
chat.export_spans("http://localhost:4318")
```

The same works for one reply (`reply.export_spans(...)`), a saved log
(`export_spans(load_events(path), endpoint=...)`) and an evaluation (`results.export_spans(...,
name="nightly")`: one trace per row, tagged with the run's name and the row's scores)."""),
        ("code", """chat.close()"""),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
    return nb


def main(names: list[str]) -> None:
    ROOT.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = build(name, cells)
        NotebookClient(nb, timeout=60, kernel_name="python3", record_timing=False,
                       store_widget_state=False).execute(cwd=str(ROOT))
        clean(nb)
        path = ROOT / f"{name}.ipynb"
        nbformat.write(nb, path)
        print("wrote", path, f"({path.stat().st_size:,} bytes)")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clean(nb: nbformat.NotebookNode) -> None:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]


if __name__ == "__main__":
    main(sys.argv[1:])
