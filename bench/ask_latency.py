"""Ask latency as a conversation grows, two ways.

(a) Reopened: a widget reopened on a conversation of 10, 1,000 and 10,000 messages asks one
more question; how long from ask() until its turn is settled in the traits, and how many bytes
the settled state takes. The 10-message conversation is the baseline of the same run.

(b) One session: one widget asks 2,000 questions in a row (every reply, its events and its
timeline held in the kernel, the conversation growing on the server too); the ask around turn
10 is the baseline of the ask around turn 2,000. Also: bytes handed to the comm per ask,
snapshot() at turn 20 and at turn 2,000 (both show the newest 20 turns), and the kernel's
resident memory per turn.

Goal for both: flat, the ratio <= 1.5x.

    python bench/ask_latency.py [--asks 7] [--turns 2000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
import uuid
from typing import Any

from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer

from _common import machine, table

GOAL = 1.5


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


class Comm:
    """Stands in for the widget's comm (no browser here): counts the bytes of every message,
    trait updates and live messages alike, serialized as a kernel would."""

    def __init__(self, widget: ChatWidget) -> None:
        self.bytes = 0
        widget._send = self  # type: ignore[method-assign]

    def __call__(self, msg: Any, buffers: Any = None) -> None:
        self.bytes += len(json.dumps(msg)) + sum(len(b) for b in buffers or ())


def widget_for(server: LocalServer, app: dict[str, str], conversation: str | None) -> tuple[ChatWidget, Comm]:
    widget = ChatWidget(app["app_id"], app["trigger_id"], "bench", api_key=server.api_key,
                        base_url=server.base_url, conversation_id=conversation)
    comm = Comm(widget)
    widget.booted.result(300)
    return widget, comm


def ask(widget: ChatWidget, query: str) -> float:
    started = time.perf_counter()
    widget.ask(query)
    widget.wait()
    return (time.perf_counter() - started) * 1000


def cpu_ms() -> float:
    """This process's CPU time: the kernel's side and the in-process server's, less moved than
    the wall clock when other work shares the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def reopened(server: LocalServer, count: int, asks: int) -> tuple[object, ...]:
    app = server.app("echo")
    conversation = populate(server, app, count)
    opened = time.perf_counter()
    widget, _ = widget_for(server, app, conversation)
    open_ms = (time.perf_counter() - opened) * 1000
    times = [ask(widget, f"one more question {i}") for i in range(asks)]
    state = len(json.dumps({k: getattr(widget, k) for k in ("transcript", "timelines", "header")}))
    widget.close()
    return count + asks, statistics.median(times), open_ms, state


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None  # not Linux: no resident size to read cheaply


def snapshot_ms(widget: ChatWidget) -> float:
    started = time.perf_counter()
    widget.snapshot()
    return (time.perf_counter() - started) * 1000


def session(server: LocalServer, turns: int) -> dict[str, Any]:
    """One widget asking `turns` questions; asks 6..15 are the baseline, the last ten the end."""
    widget, comm = widget_for(server, server.app("echo"), None)
    early: list[float] = []
    early_bytes: list[int] = []
    early_cpu: list[float] = []
    late: list[float] = []
    late_bytes: list[int] = []
    late_cpu: list[float] = []
    snap_early = 0.0
    rss_start = None
    for turn in range(1, turns + 1):
        before, cpu = comm.bytes, cpu_ms()
        ms = ask(widget, f"turn {turn}: " + "word " * 10)
        if 6 <= turn <= 15:
            early.append(ms)
            early_bytes.append(comm.bytes - before)
            early_cpu.append(cpu_ms() - cpu)
        elif turn > turns - 10:
            late.append(ms)
            late_bytes.append(comm.bytes - before)
            late_cpu.append(cpu_ms() - cpu)
        if turn == 20:
            snap_early = min(snapshot_ms(widget) for _ in range(3))
            rss_start = rss_bytes()
    snap_late = min(snapshot_ms(widget) for _ in range(3))
    rss_end = rss_bytes()
    widget.close()
    per_turn = (rss_end - rss_start) / (turns - 20) if rss_start is not None and rss_end is not None else None
    return {"early": statistics.median(early), "late": statistics.median(late),
            "early_bytes": statistics.median(early_bytes), "late_bytes": statistics.median(late_bytes),
            "early_cpu": statistics.median(early_cpu), "late_cpu": statistics.median(late_cpu),
            "snap_early": snap_early, "snap_late": snap_late, "rss_per_turn": per_turn}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asks", type=int, default=7)
    parser.add_argument("--turns", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="10 / 1,000 / 3,000 messages, a 300-turn session")
    args = parser.parse_args()
    sizes = (10, 1_000, 3_000) if args.quick else (10, 1_000, 10_000)
    if args.quick:
        args.asks, args.turns = 5, 300
    rows = []
    with LocalServer(chunk_size=64, chunk_delay=0, node_delay=0) as server:
        for count in sizes:
            rows.append(reopened(server, count, args.asks))
        grown = session(server, args.turns)
    base = rows[0][1]
    shown = [(f"{r[0]:,}", r[1], r[1] / base, r[2], r[3]) for r in rows]
    print(f"(a) ask latency: median of {args.asks} asks into a reopened conversation; {machine()}")
    print(table(["messages", "ask -> settled (ms)", "ratio to 10", "reopen (ms)", "settled state (bytes)"], shown))
    worst = max(r[1] for r in rows) / base
    largest_ratio = rows[-1][1] / base
    turns = args.turns
    print(f"(b) one session of {turns:,} asks with the widget (median of 10 asks at each end)")
    per_turn = grown["rss_per_turn"]
    print(table(["measure", "around turn 10", f"around turn {turns:,}", "ratio"], [
        ("ask -> settled (ms)", grown["early"], grown["late"], grown["late"] / grown["early"]),
        ("process CPU per ask (ms)", grown["early_cpu"], grown["late_cpu"], grown["late_cpu"] / grown["early_cpu"]),
        ("bytes to the comm per ask", grown["early_bytes"], grown["late_bytes"],
         grown["late_bytes"] / grown["early_bytes"]),
        ("snapshot() ms (turn 20 / last; 20 turns shown)", grown["snap_early"], grown["snap_late"],
         grown["snap_late"] / grown["snap_early"]),
    ]))
    if per_turn is not None:
        print(f"(kernel resident memory grew {per_turn / 1024:,.1f} kB per turn from turn 20 to {turns:,})")
    session_ratio = grown["late"] / grown["early"]
    largest = sizes[-1]
    verdict = "met" if max(worst, session_ratio) <= GOAL else "MISSED"
    print(f"SUMMARY ask_latency: the {largest:,}-message conversation asks in {largest_ratio:.2f}x the time of the "
          f"10-message one; in one session turn {turns:,} asks in {session_ratio:.2f}x the time of turn 10 "
          f"({grown['late_cpu'] / grown['early_cpu']:.2f}x the CPU), "
          f"snapshot() {grown['snap_late'] / grown['snap_early']:.2f}x ({verdict} goal: flat, <= {GOAL}x); "
          f"settled state {rows[-1][3]:,} bytes at {largest:,} messages")


if __name__ == "__main__":
    main()
