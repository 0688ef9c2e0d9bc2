"""Widget comm: at 1k, 10k and 100k upstream chunks/s, how many messages (and bytes) the
widget sends to the browser per second, and that the browser's final text is identical.

Events are fed straight into the widget's live reply on its own loop (a server cannot pace
100k chunks/s), so this measures the widget's coalescing alone. Every comm message counts:
custom `live` messages and trait updates.

    python bench/widget_comm.py [--seconds 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from atomemo_notebook import ChatWidget
from atomemo_notebook.protocol.atomemo.events import event_from_wire
from atomemo_notebook.server import LocalServer
from atomemo_notebook.session import _runtime as runtime
from atomemo_notebook.views._view_state import ANSWER_CAP

from _common import machine, table

CHUNK = "abc def "  # 8 characters per chat_message


class Wire:
    """Stands in for the comm: records every message the widget would send to the browser."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, int, dict[str, Any]]] = []

    def __call__(self, msg: dict[str, Any], buffers: Any = None) -> None:
        self.messages.append((time.monotonic(), len(json.dumps(msg, separators=(",", ":"))), msg))


async def drive(widget: ChatWidget, rate: int, seconds: float) -> tuple[str, float]:
    chat = widget.chat
    reply = chat._start("bench", None)
    apply = chat._apply  # the same path a real stream takes: reply, message tree, then the view
    apply(reply, event_from_wire("message_created", {"message_id": "m-bench", "conversation_id": "c-bench"}),
          None, None)
    chunk = event_from_wire("chat_message", {"text": CHUNK})
    sent, started = 0, time.monotonic()
    total = int(rate * seconds)
    while sent < total:
        target = min(total, int((time.monotonic() - started) * rate))
        while sent < target:
            apply(reply, chunk, None, None)
            sent += 1
        await asyncio.sleep(0.001)
    elapsed = time.monotonic() - started
    apply(reply, event_from_wire("execution_finished", {"resource": {"id": "x", "status": "succeeded"}}),
          None, None)
    chat._finish(reply)
    assert widget._orchestrator.pump is not None
    await widget._orchestrator.pump.done
    widget._orchestrator.settle()
    return reply.text, sent / elapsed


def measure(server: LocalServer, rate: int, seconds: float) -> tuple[Any, ...]:
    echo = server.app("echo")
    widget = ChatWidget(echo["app_id"], echo["trigger_id"], "bench", api_key=server.api_key,
                        base_url=server.base_url)
    widget.booted.result(10)
    wire = Wire()
    widget._send = wire  # type: ignore[method-assign]  # custom messages and trait updates alike
    text, achieved = runtime.submit(drive(widget, rate, seconds)).result(120)
    live = [m for _, _, m in wire.messages if m.get("method") == "custom" and m["content"]["type"] == "live"]
    browser_text = "".join(m["content"].get("append", "") for m in live)
    live_times = [t for t, _, m in wire.messages if m.get("method") == "custom"]
    span = max(live_times) - min(live_times) if len(live_times) > 1 else seconds
    total_bytes = sum(size for _, size, _ in wire.messages)
    live_bytes = sum(size for _, size, m in wire.messages if m.get("method") == "custom")
    turns = widget.transcript["turns"]
    # The trait keeps the first ANSWER_CAP characters; the view already holds the streamed text.
    settled = turns[-1]["answer"] if turns else ""
    identical = browser_text == text and (not turns or (text.startswith(settled) and turns[-1]["answer_chars"] == len(text)))
    size = len(text.encode())
    return (f"{rate:,}", f"{achieved:,.0f}", len(wire.messages), (len(live) - 1) / span,
            live_bytes / size, total_bytes / size, "yes" if identical else "NO")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="as is (about 10 s): the bytes ratio needs 2 s of text")
    args = parser.parse_args()
    del args.quick  # already short; less text would only inflate the fixed size of the settled turn
    with LocalServer() as server:
        rows = [measure(server, rate, args.seconds) for rate in (1_000, 10_000, 100_000)]
    print(f"widget comm: {args.seconds:g} s of chat_message chunks of {len(CHUNK)} chars at each rate; {machine()}")
    print(table(["target chunks/s", "achieved chunks/s", "messages (all)", "live messages/s",
                 "streaming bytes / text", "all bytes / text",
                 "final text identical"], rows))
    worst_rate = max(r[3] for r in rows)
    worst_all = max(r[5] for r in rows)
    rate_ok = worst_rate <= 31 and all(r[6] == "yes" for r in rows)
    print(f"SUMMARY widget_comm: at most {worst_rate:.1f} live messages/s ({'met' if rate_ok else 'MISSED'}"
          f" ~30/s); all bytes up to {worst_all:.2f}x the text "
          f"({'met' if worst_all <= 2.0 else 'MISSED'} <= 2x: the settled turn carries at most "
          f"{ANSWER_CAP:,} characters of the answer the view already holds)")


if __name__ == "__main__":
    main()
