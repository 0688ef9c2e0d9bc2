"""Where a row's client CPU goes: one real echo answer (recorded from the embedded server
over loopback), replayed in-process to (a) a bare httpx loop (stream, split lines,
json.loads, keep the text and the status) and (b) `AsyncChat.ask`, the call evaluate()
makes for each row; between them, the layers of (b) added one at a time, each measured in
place (the same request, the same stream): the SSE decoder and frame parser on the bare
stream, then the transport (AsyncClient.send_message read to its end: the request's plan
and deadline, the stream's state and idle timer), then a Reply folding each event. A stage
timed alone in a tight loop reads about half of what it costs in place (warm caches), so
the layers are measured in place.

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
    """The bare loop's request and stream, read by our SSE decoder and frame parser."""
    async def run() -> None:
        async with httpx.AsyncClient(transport=replaying(recorded)) as http:
            for _ in range(asks):
                async with http.stream("POST", "http://bench/chat/messages", json={"query": QUERY}) as response:
                    decoder = FrameDecoder()
                    async for raw in response.aiter_raw():
                        for frame in decoder.feed(raw):
                            parse_frame(frame.data)
                await asyncio.sleep(0)
    asyncio.run(run())


def transport(recorded: Recorded, asks: int, *, fold: bool = False) -> None:
    """AsyncClient.send_message read to its end; with `fold`, a Reply applies each event."""
    async def run() -> None:
        http = httpx.AsyncClient(transport=replaying(recorded))
        api = AsyncClient("bench-key", base_url="http://bench", http_client=http)
        for _ in range(asks):
            reply = Reply(QUERY, system="atomemo") if fold else None
            stream = await api.send_message(app_id="app", trigger_id="trigger", query=QUERY, user_id="bench")
            async for event in stream:
                if reply is not None:
                    reply.apply(event)
            await stream.close()
            if reply is not None:
                reply.close()
                assert reply.status == "succeeded"
            await asyncio.sleep(0)
        await http.aclose()
    asyncio.run(run())


def folded(recorded: Recorded, asks: int) -> None:
    transport(recorded, asks, fold=True)


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
    stages = (("bare", bare), ("decode", decode_parse), ("transport", transport), ("fold", folded), ("ours", ours))
    for _, run in stages:
        run(recorded, 50)  # each path warm before any is timed
    measured = {name: cpu_per_ask(run, recorded, args.asks, args.rounds) for name, run in stages}
    extra = measured["ours"] - measured["bare"]
    steps = {"transport": measured["transport"] - measured["decode"], "fold": measured["fold"] - measured["transport"],
             "chat": measured["ours"] - measured["fold"]}
    print(f"client CPU per ask, in-process replay of one echo answer ({events} events, "
          f"{sum(map(len, chunks)):,} bytes); median of {args.rounds} rounds of {args.asks} asks; {machine()}")
    print(table(["what (each row adds one layer of (b), measured in place)", "CPU us/ask", "added"], [
        ("(a) bare httpx: stream, lines, json.loads", measured["bare"], "-"),
        ("  the same stream, our SSE decoder + frame parser", measured["decode"], measured["decode"] - measured["bare"]),
        ("  + our transport: send_message read to the end", measured["transport"], steps["transport"]),
        ("  + a Reply folding each event", measured["fold"], steps["fold"]),
        ("(b) AsyncChat.ask (a row of evaluate())", measured["ours"], steps["chat"]),
        ("(b) - (a): the client's own work per ask", extra, "-"),
    ]))
    print(f"SUMMARY ask_overhead: client CPU per {events}-event answer, in-process: AsyncChat.ask "
          f"{measured['ours']:.0f} us, a bare httpx loop {measured['bare']:.0f} us; of the {extra:.0f} us more: "
          f"transport {steps['transport']:.0f}, the reply's fold {steps['fold']:.0f}, the chat {steps['chat']:.0f}, "
          f"our decoder+parser {measured['decode'] - measured['bare']:+.0f} against the bare loop's (a report: no goal)")


if __name__ == "__main__":
    main()
