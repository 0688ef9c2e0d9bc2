"""Where a row's client CPU goes: one real echo answer (recorded from the embedded server
over loopback), replayed in-process to (a) a bare httpx loop (stream, split lines,
json.loads, keep the text and the status) and (b) `AsyncChat.ask`, the call evaluate()
makes for each row; then the stages of (b) alone: the SSE decoder and frame parser, and
the reply's fold (translate, keep within its share, record each event).

Why in-process: with no socket and no server in the timing, what is left is the client's
own CPU per ask, which a shared machine's load moves far less than a loopback ratio (see
eval_throughput.py for that one). The answer is replayed through httpx's MockTransport, so
both sides still build the request and read the response through httpx; the replayed response
names a socket (one that does nothing), so the client takes the path a real connection takes:
a loop timer for the stream's idle deadline, not a cancel scope around every read.

    python bench/ask_overhead.py [--asks 2000] [--rounds 7] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable

import httpx

from atomemo_notebook import AsyncChat, AsyncClient
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._sse import FrameDecoder
from atomemo_notebook.protocol.atomemo.events import parse_frame

from _common import machine, server_process, table

PACE = {"X-Atomemo-Pace": "chunk_size=16; chunk_delay=0; node_delay=0"}
QUERY = "row 0: " + "word " * 20  # eval_throughput.py's rows


Recorded = tuple[bytes, list[bytes]]  # the app's description, the answer's raw chunks


def record() -> Recorded:
    """The echo app and one answer of it, as the embedded server sends them."""
    with server_process() as info, httpx.Client(timeout=30) as http:
        echo = info["apps"]["echo"]
        app = http.get(f"{info['base_url']}/chat/app/{echo['app_id']}").raise_for_status().content
        body = {"appId": echo["app_id"], "triggerId": echo["trigger_id"], "query": QUERY, "userId": "bench"}
        with http.stream("POST", f"{info['base_url']}/chat/messages", json=body,
                         headers={"X-Api-Key": info["api_key"], **PACE}) as response:
            return app, list(response.iter_raw())


class _Socket:
    def shutdown(self, how: int) -> None:  # what the idle deadline would call: nothing to wake here
        pass


class _NetworkStream:
    """What httpx's own transports put in `response.extensions["network_stream"]`."""

    def get_extra_info(self, name: str) -> object:
        return _Socket() if name == "socket" else None


def replaying(recorded: Recorded) -> httpx.MockTransport:
    app, chunks = recorded

    async def stream(parts: list[bytes]) -> AsyncIterator[bytes]:  # as a socket gives it: not read yet
        for part in parts:
            yield part

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # the app, read once (evaluate() loads it before its rows)
            return httpx.Response(200, headers={"content-type": "application/json"}, content=stream([app]))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream(chunks),
                              extensions={"network_stream": _NetworkStream()})
    return httpx.MockTransport(answer)


def bare(recorded: Recorded, asks: int) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=replaying(recorded)) as http:
            for _ in range(asks):
                parts: list[str] = []
                status = "failed"
                async with http.stream("POST", "http://bench/chat/messages", json={"query": QUERY}) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            event = json.loads(line[5:])
                            name = event.get("event")
                            if name == "chat_message":
                                parts.append(event["data"].get("text", ""))
                            elif name == "execution_finished":
                                status = event["data"]["resource"].get("status", "failed")
                assert status == "succeeded" and "".join(parts).strip() == QUERY.strip()
                await asyncio.sleep(0)  # a turn of the loop, as a socket's wait gives (it drops cancelled timers)
    asyncio.run(run())


def ours(recorded: Recorded, asks: int) -> None:
    async def run() -> None:
        http = httpx.AsyncClient(transport=replaying(recorded))
        api = AsyncClient("bench-key", base_url="http://bench", http_client=http)
        base = AsyncChat(api, app_id="app", trigger_id="trigger", user_id="bench")
        await base.load_app()  # once, as evaluate() does before its rows
        for _ in range(asks):
            reply = await base.fresh(None).ask(QUERY)  # a row: its own conversation
            assert reply.status == "succeeded" and reply.text.strip() == QUERY.strip(), (reply.status, reply.text)
            await asyncio.sleep(0)
        await http.aclose()
    asyncio.run(run())


def decode_parse(recorded: Recorded, asks: int) -> None:
    _, chunks = recorded
    for _ in range(asks):
        decoder = FrameDecoder()
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                parse_frame(frame.data)


def fold(recorded: Recorded, asks: int) -> None:
    _, chunks = recorded
    decoder = FrameDecoder()
    events = [parse_frame(frame.data) for chunk in chunks for frame in decoder.feed(chunk)]
    for _ in range(asks):
        reply = Reply(QUERY, system="atomemo")
        for event in events:
            reply.apply(event)
        reply.close()


def cpu_per_ask(run: Callable[[Recorded, int], None], recorded: Recorded, asks: int, rounds: int) -> float:
    """Median CPU microseconds per ask over `rounds` runs (process time: this thread's work)."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        run(recorded, asks)
        times.append((time.process_time() - started) / asks * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="300 asks, 3 rounds: a report for CI, ~5 s")
    args = parser.parse_args()
    if args.quick:
        args.asks, args.rounds = 300, 3
    recorded = record()
    chunks = recorded[1]
    decoder = FrameDecoder()
    events = sum(1 for chunk in chunks for _ in decoder.feed(chunk))
    bare(recorded, 50)  # warm both (imports, first-use caches)
    ours(recorded, 50)
    measured = {}
    for name, run in (("bare", bare), ("ours", ours), ("decode+parse", decode_parse), ("fold", fold)):
        measured[name] = cpu_per_ask(run, recorded, args.asks, args.rounds)
    extra = measured["ours"] - measured["bare"]
    print(f"client CPU per ask, in-process replay of one echo answer ({events} events, "
          f"{sum(map(len, chunks)):,} bytes); median of {args.rounds} rounds of {args.asks} asks; {machine()}")
    print(table(["what", "CPU us/ask", "share of ours"], [
        ("(a) bare httpx: stream, lines, json.loads", measured["bare"], measured["bare"] / measured["ours"]),
        ("(b) AsyncChat.ask (a row of evaluate())", measured["ours"], 1.0),
        ("  of it: SSE decoder + frame parser", measured["decode+parse"], measured["decode+parse"] / measured["ours"]),
        ("  of it: the reply's fold of every event", measured["fold"], measured["fold"] / measured["ours"]),
        ("(b) - (a): the client's own work per ask", extra, extra / measured["ours"]),
    ]))
    print(f"SUMMARY ask_overhead: client CPU per {events}-event answer, in-process: AsyncChat.ask "
          f"{measured['ours']:.0f} us, a bare httpx loop {measured['bare']:.0f} us; of ask's {extra:.0f} us more, the "
          f"fold {measured['fold']:.0f} us, decode+parse {measured['decode+parse']:.0f} us (a report: no goal)")


if __name__ == "__main__":
    main()
