"""Ask latency as a conversation grows: a widget reopened on a conversation of 10, 1,000 and
10,000 messages asks one more question; how long from ask() until its turn is settled in
the traits, and how many bytes the settled state takes. The 10-message conversation is the
baseline of the same run (goal: flat, the ratio stays near 1).

    python bench/ask_latency.py [--asks 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer

from _common import machine, table


def populate(server: LocalServer, app: dict[str, str], count: int) -> str:
    """A linear conversation of `count` answered messages, written straight into the store."""
    store = server.asgi_app.state.emulator.store
    conversation, parent = None, None
    for i in range(count):
        message_id = str(uuid.uuid4())
        conversation = store.create_message_in(
            message_id, conversation, app_id=app["app_id"], trigger_id=app["trigger_id"], user_id="bench",
            name="bench", parent_id=parent, dialogue_count=i + 1, query=f"question {i}", source="bench",
            inputs={})
        store.fail_message(message_id, None)  # ends it; then give it an answer
        store._write("UPDATE messages SET status='succeeded', answer=? WHERE id=?", (f"answer {i} " * 20, message_id))
        parent = message_id
    assert conversation is not None
    return conversation


def measure(server: LocalServer, count: int, asks: int) -> tuple[object, ...]:
    app = server.app("echo")
    conversation = populate(server, app, count)
    opened = time.perf_counter()
    widget = ChatWidget(app["app_id"], app["trigger_id"], "bench", api_key=server.api_key,
                        base_url=server.base_url, conversation_id=conversation)
    widget.send = lambda *a, **k: None  # type: ignore[method-assign]  # no browser: measure the kernel side
    widget.booted.result(300)
    open_ms = (time.perf_counter() - opened) * 1000
    times = []
    for i in range(asks):
        started = time.perf_counter()
        widget.ask(f"one more question {i}")
        widget.wait()
        times.append((time.perf_counter() - started) * 1000)
    state = len(json.dumps({k: getattr(widget, k) for k in ("transcript", "timelines", "header")}))
    widget.close()
    return count + asks, statistics.median(times), open_ms, state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asks", type=int, default=7)
    args = parser.parse_args()
    rows = []
    with LocalServer(chunk_size=64, chunk_delay=0, node_delay=0) as server:
        for count in (10, 1_000, 10_000):
            rows.append(measure(server, count, args.asks))
    base = rows[0][1]
    shown = [(f"{r[0]:,}", r[1], r[1] / base, r[2], r[3]) for r in rows]
    print(f"ask latency: median of {args.asks} asks into a reopened conversation; {machine()}")
    print(table(["messages", "ask -> settled (ms)", "ratio to 10", "reopen (ms)", "settled state (bytes)"], shown))
    worst = max(r[1] for r in rows) / base
    print(f"SUMMARY ask_latency: the 10,000-message conversation asks in {worst:.2f}x the time of the "
          f"10-message one ({'met' if worst <= 1.5 else 'MISSED'} goal: flat, <= 1.5x); settled state "
          f"{rows[-1][3]:,} bytes at 10,000 messages")


if __name__ == "__main__":
    main()
