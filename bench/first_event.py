"""Time to first event on a stream that lasts about 5 s: our Client (streams) against a
client that buffers the whole body before parsing (as dify-client does).

    python bench/first_event.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from atomemo_notebook import Client

from _common import machine, server_process, table

PACE = "chunk_size=1; chunk_delay=0.05; node_delay=0"  # 100 characters: about 5 s of stream
QUERY = "x" * 100


def ours(info: dict, query: str = QUERY) -> tuple[float, float]:
    echo = info["apps"]["echo"]
    http = httpx.Client(headers={"X-Atomemo-Pace": PACE})
    with Client(info["api_key"], base_url=info["base_url"], http_client=http) as client:
        started = time.perf_counter()
        stream = client.send_message(app_id=echo["app_id"], trigger_id=echo["trigger_id"], query=query,
                                     user_id="ttfe")
        first = None
        for _ in stream:
            if first is None:
                first = time.perf_counter() - started
        return float(first or 0.0), time.perf_counter() - started


def buffered(info: dict, query: str = QUERY) -> tuple[float, float]:
    echo = info["apps"]["echo"]
    started = time.perf_counter()
    body = httpx.post(f"{info['base_url']}/chat/messages", timeout=60,
                      headers={"X-Api-Key": info["api_key"], "X-Atomemo-Pace": PACE},
                      json={"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": query,
                            "userId": "ttfe"}).text
    events = [json.loads(b[5:]) for b in body.split("\n\n") if b.startswith("data:")]
    first = time.perf_counter() - started  # the first event is usable only now
    assert events[0]["event"] == "message_created"
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of a ~1 s stream: a report for CI")
    args = parser.parse_args()
    query = QUERY[:20] if args.quick else QUERY  # 20 characters: a stream of about 1 s
    if args.quick:
        args.rounds = 1
    results: dict[str, list[tuple[float, float]]] = {"atomemo_notebook.Client": [], "buffered body": []}
    with server_process() as info:
        for _ in range(args.rounds):
            results["atomemo_notebook.Client"].append(ours(info, query))
            results["buffered body"].append(buffered(info, query))
    rows = []
    for name, runs in results.items():
        rows.append((name, statistics.median([r[0] for r in runs]) * 1000,
                     statistics.median([r[1] for r in runs])))
    print(f"time to first event, stream of ~{len(query) * 0.05:g} s; median of {args.rounds}; {machine()}")
    print(table(["client", "first event (ms)", "whole stream (s)"], rows))
    ours_ms, theirs_ms = rows[0][1], rows[1][1]
    verdict = "met" if ours_ms <= 50 else "MISSED"
    print(f"SUMMARY first_event: {ours_ms:.1f} ms for ours vs {theirs_ms:,.0f} ms buffered "
          f"(target <= 50 ms: {verdict})")


if __name__ == "__main__":
    main()
