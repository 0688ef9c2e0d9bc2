"""The embedded server under load: 200 concurrent streams on loopback; time to first byte
p50/p95; every stream complete. Bounded: one round, 120 s at most.

    python bench/server_load.py [--streams 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from _common import machine, server_process, table


async def one(http: httpx.AsyncClient, info: dict, i: int) -> tuple[float, float, bool]:
    echo = info["apps"]["echo"]
    body = {"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": f"stream {i} " * 10,
            "userId": f"load-{i}"}
    started = time.perf_counter()
    first = None
    chunks = []
    async with http.stream("POST", f"{info['base_url']}/chat/messages", json=body,
                           headers={"X-Api-Key": info["api_key"]}) as response:
        async for chunk in response.aiter_text():
            if first is None:
                first = time.perf_counter() - started
            chunks.append(chunk)
    text = "".join(chunks)
    return float(first or 0), time.perf_counter() - started, text.rstrip().endswith("}}")


async def run(streams: int) -> list[tuple[float, float, bool]]:
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
    with server_process() as info:
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            return await asyncio.wait_for(asyncio.gather(*(one(http, info, i) for i in range(streams))), 120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 streams: a report for CI")
    args = parser.parse_args()
    if args.quick:
        args.streams = 50
    started = time.perf_counter()
    results = asyncio.run(run(args.streams))
    wall = time.perf_counter() - started
    ttfb = sorted(r[0] * 1000 for r in results)
    complete = sum(1 for r in results if r[2])
    p50, p95 = statistics.median(ttfb), ttfb[int(0.95 * (len(ttfb) - 1))]
    rows = [(args.streams, complete, p50, p95, max(r[1] for r in results), wall)]
    print(f"embedded server: {args.streams} concurrent streams (demo pacing) on loopback; {machine()}")
    print(table(["streams", "complete", "TTFB p50 (ms)", "TTFB p95 (ms)", "slowest stream (s)", "wall (s)"],
                rows))
    verdict = "all complete" if complete == args.streams else f"{args.streams - complete} INCOMPLETE"
    print(f"SUMMARY server_load: {complete}/{args.streams} streams complete, TTFB p50 {p50:.0f} ms, "
          f"p95 {p95:.0f} ms ({verdict})")


if __name__ == "__main__":
    main()
