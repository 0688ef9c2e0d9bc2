"""Evaluation throughput: rows per second of evaluate() at concurrency 1 / 8 / 32 against
the embedded server (in its own process), and the ratio to a bare asyncio + httpx loop
posting the same requests at the same concurrency and reading each stream to its end
(json.loads of every data line, as any client must). The same echo rows, paced at full speed.

Both sides are timed for what a user waits for: the run, then its table (a DataFrame of one
row per question with its answer and status). pandas is imported before anything is timed,
on both sides: its import is a cost of the first table in a session, not of a row. Each round
runs the two back to back (in turn first); the ratio is the median of the rounds' own ratios,
and the client's CPU time per row is shown beside it (less moved by a shared host's load).

    python bench/eval_throughput.py [--rows 200] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import statistics
import time

import httpx
import pandas as pd

from atomemo_notebook import AsyncChat, AsyncClient, evaluate
from atomemo_notebook.session import _runtime as runtime

from _common import machine, server_process, table

PACE = {"X-Atomemo-Pace": "chunk_size=16; chunk_delay=0; node_delay=0"}
GOAL = 0.9


def questions(rows: int, round_: int) -> list[str]:
    return [f"round {round_} row {i}: " + "word " * 20 for i in range(rows)]


def bare(info: dict, rows: list[str], concurrency: int) -> int:
    echo = info["apps"]["echo"]
    url = f"{info['base_url']}/chat/messages"

    async def run() -> list[dict[str, str]]:
        gate = asyncio.Semaphore(concurrency)
        found: list[dict[str, str]] = []
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as http:
            async def one(query: str) -> None:
                parts: list[str] = []
                status = "failed"
                async with gate, http.stream("POST", url, headers={"X-Api-Key": info["api_key"], **PACE}, json={
                        "appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": query,
                        "userId": "bench-bare"}) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            event = json.loads(line[5:])
                            name = event.get("event")
                            if name == "chat_message":
                                parts.append(event["data"].get("text", ""))
                            elif name == "execution_finished":  # the run's status, as evaluate() reads it
                                status = event["data"]["resource"].get("status", "failed")
                found.append({"query": query, "status": status, "answer": "".join(parts)})

            await asyncio.gather(*(one(q) for q in rows))
        return found

    frame = pd.DataFrame(asyncio.run(run()), columns=["query", "status", "answer"])  # the user's table
    return int((frame["status"] == "succeeded").sum())


def ours(info: dict, rows: list[str], concurrency: int) -> int:
    echo = info["apps"]["echo"]
    # The same connection pool as the bare loop's: httpcore checks every idle connection on each request.
    http = httpx.AsyncClient(headers=PACE, limits=httpx.Limits(max_connections=concurrency))
    api = AsyncClient(info["api_key"], base_url=info["base_url"], http_client=http)
    chat = AsyncChat(api, app_id=echo["app_id"], trigger_id=echo["trigger_id"], user_id="bench-eval")
    results = evaluate(chat, rows, concurrency=concurrency).wait(300, bar=False)
    succeeded = int((results.df["status"] == "succeeded").sum())
    runtime.submit(http.aclose()).result(30)  # as the bare loop's `async with` closes its client
    return succeeded


class Collector:
    """Seconds Python's cyclic garbage collector ran (any thread), from gc's own callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


def cpu_seconds() -> float:
    """This process's CPU time (every thread: evaluate() runs on the views' loop thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="60 rows, 3 rounds: a report for CI, ~15 s")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds = 60, 3
    sides = (("bare", bare), ("ours", ours))
    runs: dict[tuple[str, int], list[tuple[float, float, float]]] = {}  # (side, concurrency) -> [(s, cpu s, gc s)]
    collector = Collector()
    gc.callbacks.append(collector)
    with server_process() as info:
        bare(info, questions(20, -1), 4)  # warm both sides (imports, the loop thread, connections)
        ours(info, questions(20, -2), 4)
        for round_ in range(args.rounds):
            for concurrency in (1, 8, 32):
                # Back to back, in turn first: each round's pair saw about the same machine, and the
                # ratio is taken within the pair (a shared host's load moves between rounds).
                for name, run in sides if round_ % 2 == 0 else sides[::-1]:
                    rows = questions(args.rows, round_ * 100 + concurrency)
                    # Each run starts from a settled heap: what the collector does in it is the run's
                    # own doing, not the garbage of the run before (or the imports' first full
                    # collection, ~40 ms, which fell in whichever run came first).
                    gc.collect()
                    cpu, collected, started = cpu_seconds(), collector.seconds, time.perf_counter()
                    count = run(info, rows, concurrency)
                    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
                    assert count == args.rows, (name, concurrency, count)
                    runs.setdefault((name, concurrency), []).append((elapsed, used, collector.seconds - collected))
    gc.callbacks.remove(collector)
    out = []
    ratios = []
    for concurrency in (1, 8, 32):
        mine, theirs = runs[("ours", concurrency)], runs[("bare", concurrency)]
        paired = statistics.median(t[0] / m[0] for m, t in zip(mine, theirs, strict=True))
        ratios.append(paired)
        out.append((concurrency, args.rows / statistics.median(t[0] for t in theirs),
                    args.rows / statistics.median(m[0] for m in mine), paired,
                    statistics.median(t[1] for t in theirs) / args.rows * 1e6,
                    statistics.median(m[1] for m in mine) / args.rows * 1e6,
                    statistics.median(t[2] for t in theirs) / args.rows * 1e6,
                    statistics.median(m[2] for m in mine) / args.rows * 1e6))
    print(f"evaluation throughput: {args.rows} echo rows, run + table, median of {args.rounds} rounds; {machine()}")
    print(table(["concurrency", "bare rows/s", "evaluate() rows/s", "ratio (paired)", "bare CPU us/row",
                 "evaluate() CPU us/row", "of it, GC: bare", "GC: evaluate()"], out))
    verdict = "met" if min(ratios) >= GOAL else "MISSED"
    print(f"SUMMARY eval_throughput: evaluate() at 1/8/32 = {', '.join(f'{r:.2f}x' for r in ratios)} of a bare "
          f"asyncio + httpx loop, run + table (target >= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
