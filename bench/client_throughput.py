"""Client throughput: 200k chat_message events over loopback, consumed by
(a) a bare httpx + httpx-sse + json.loads loop (the baseline), (b) our Client,
(c) our AsyncClient, (d) line-splitting of a buffered body, as dify-client does.
Every variant reads the same stored stream (GET resume_stream of one finished message).

The Dify path (Dify cannot resume, so each round streams a fresh answer of --dify-events
`message` events from the embedded Dify routes): (e) bare httpx + httpx-sse + json.loads,
(f) our DifyClient; the ratio is (f) to (e).

    python bench/client_throughput.py [--events 200000] [--dify-events 50000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable

import httpx
from httpx_sse import connect_sse

from atomemo_notebook import AsyncClient, Client, DifyClient

from _common import machine, server_process, table


def record_stream(info: dict, events: int) -> str:
    echo = info["apps"]["echo"]
    headers = {"X-Atomemo-Pace": "chunk_size=1; chunk_delay=0; node_delay=0"}
    with Client(info["api_key"], base_url=info["base_url"], http_client=httpx.Client(headers=headers),
                stream_idle_timeout=300) as client:
        stream = client.send_message(app_id=echo["app_id"], trigger_id=echo["trigger_id"], query="x",
                                     user_id="bench", inputs={"repeat": events})
        count = sum(1 for e in stream if e.event == "chat_message")
    assert count == events, count
    return str(stream.message_id)


def bare(url: str, key: str) -> int:
    n = 0
    with httpx.Client(timeout=httpx.Timeout(60, connect=5)) as http, \
            connect_sse(http, "GET", url, headers={"X-Api-Key": key}) as source:
        for sse in source.iter_sse():
            if json.loads(sse.data)["event"] == "chat_message":
                n += 1
    return n


def ours_sync(info: dict, message_id: str) -> int:
    with Client(info["api_key"], base_url=info["base_url"]) as client:
        return sum(1 for e in client.resume_stream(message_id) if e.event == "chat_message")


def ours_async(info: dict, message_id: str) -> int:
    async def run() -> int:
        async with AsyncClient(info["api_key"], base_url=info["base_url"]) as client:
            n = 0
            async for event in await client.resume_stream(message_id):
                if event.event == "chat_message":
                    n += 1
            return n

    return asyncio.run(run())


def buffered_lines(url: str, key: str) -> int:
    # What a client that reads the whole body first does: nothing until the end, then split.
    body = httpx.get(url, headers={"X-Api-Key": key}, timeout=60).text
    n = 0
    for line in body.split("\n\n"):
        if line.startswith("data:") and json.loads(line[5:])["event"] == "chat_message":
            n += 1
    return n


PACE = {"X-Atomemo-Pace": "chunk_size=1; chunk_delay=0; node_delay=0"}


def dify_bare(info: dict, events: int) -> int:
    echo = info["apps"]["echo"]
    n = 0
    with httpx.Client(timeout=httpx.Timeout(120, connect=5)) as http, connect_sse(
            http, "POST", f"{info['dify_base_url']}/chat-messages",
            headers={"Authorization": f"Bearer {echo['dify_api_key']}", **PACE},
            json={"query": "x", "user": "bench", "inputs": {"repeat": events},
                  "response_mode": "streaming"}) as source:
        for sse in source.iter_sse():
            if sse.data and json.loads(sse.data)["event"] == "message":
                n += 1
    return n


def dify_ours(info: dict, events: int) -> int:
    echo = info["apps"]["echo"]
    with DifyClient(echo["dify_api_key"], base_url=info["dify_base_url"], http_client=httpx.Client(headers=PACE),
                    stream_idle_timeout=120) as client:
        stream = client.chat_messages(query="x", user="bench", inputs={"repeat": events})
        return sum(1 for e in stream if e.event == "message")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--dify-events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 and 5,000 events, one round: a report for CI")
    args = parser.parse_args()
    if args.quick:
        args.events, args.dify_events, args.rounds = 20_000, 5_000, 1
    with server_process("--resume-window", "3600") as info:
        message_id = record_stream(info, args.events)
        url = f"{info['base_url']}/chat/messages/{message_id}/resume_stream"
        variants: list[tuple[str, Callable[[], int]]] = [
            ("(a) httpx + httpx-sse + json.loads", lambda: bare(url, info["api_key"])),
            ("(b) atomemo_notebook.Client", lambda: ours_sync(info, message_id)),
            ("(c) atomemo_notebook.AsyncClient", lambda: ours_async(info, message_id)),
            ("(d) buffered body, split lines", lambda: buffered_lines(url, info["api_key"])),
        ]
        best: dict[str, float] = {}
        for _ in range(args.rounds):  # interleaved rounds, best of each: less noise from the machine
            for name, run in variants:
                started = time.perf_counter()
                count = run()
                elapsed = time.perf_counter() - started
                assert count == args.events, (name, count)
                best[name] = min(best.get(name, float("inf")), elapsed)
        dify: list[tuple[str, Callable[[], int]]] = [
            ("(e) Dify: httpx + httpx-sse + json.loads", lambda: dify_bare(info, args.dify_events)),
            ("(f) Dify: atomemo_notebook.DifyClient", lambda: dify_ours(info, args.dify_events)),
        ]
        for _ in range(args.rounds):
            for name, run in dify:
                started = time.perf_counter()
                count = run()
                elapsed = time.perf_counter() - started
                assert count == args.dify_events, (name, count)
                best[name] = min(best.get(name, float("inf")), elapsed)
    base = args.events / best[variants[0][0]]
    rows = [(name, best[name], args.events / best[name], (args.events / best[name]) / base)
            for name, _ in variants]
    print(f"client throughput: {args.events:,} chat_message events over loopback; best of {args.rounds}; "
          f"{machine()}")
    print(table(["consumer", "seconds", "events/s", "ratio to (a)"], rows))
    sync_ratio, async_ratio = rows[1][3], rows[2][3]
    dify_base = args.dify_events / best[dify[0][0]]
    dify_rows = [(name, best[name], args.dify_events / best[name], (args.dify_events / best[name]) / dify_base)
                 for name, _ in dify]
    print(f"\nDify path: {args.dify_events:,} message events, a fresh stream each round (no resume); best of "
          f"{args.rounds}")
    print(table(["consumer", "seconds", "events/s", "ratio to (e)"], dify_rows))
    dify_ratio = dify_rows[1][3]
    verdict = "met" if min(sync_ratio, async_ratio, dify_ratio) >= 0.8 else "MISSED"
    print(f"SUMMARY client_throughput: Client {sync_ratio:.2f}x, AsyncClient {async_ratio:.2f}x of bare "
          f"httpx-sse; DifyClient {dify_ratio:.2f}x of bare httpx-sse on Dify (target >= 0.8x: {verdict})")


if __name__ == "__main__":
    main()
