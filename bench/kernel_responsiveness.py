"""Kernel responsiveness: time 50 trivial cell executions in a kernel, idle and while a
ChatWidget streams a long answer in the same kernel; the added latency per cell.

    python bench/kernel_responsiveness.py [--cells 50] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

from jupyter_client.manager import start_new_kernel

from _common import machine, table

# A fast stream (about 1,000 chunks/s, in the kernel's own process) is the hard case.
SETUP = """
from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer
server = LocalServer(chunk_size=4, chunk_delay=0.001, node_delay=0).start()
app = server.app("echo")
widget = ChatWidget(app["app_id"], app["trigger_id"], "bench", api_key=server.api_key, base_url=server.base_url,
                    inputs={"repeat": 400})
widget.booted.result(30)
"""
START = "reply = widget.ask('streaming while you work. ')"


def run(kc, code: str) -> float:
    started = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return (time.perf_counter() - started) * 1000


def cells(kc, n: int) -> list[float]:
    return [run(kc, "1 + 1") for _ in range(n)]


def value(kc, expression: str) -> str:
    out: list[str] = []

    def hook(msg) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    kc.execute_interactive(f"print({expression})", timeout=60, output_hook=hook)
    return "".join(out).strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="15 cells each: a report for CI")
    args = parser.parse_args()
    if args.quick:
        args.cells = 15
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        run(kc, SETUP)
        cells(kc, 5)  # warm up
        idle = cells(kc, args.cells)
        run(kc, START)
        during = cells(kc, args.cells)
        streaming_throughout = value(kc, "reply.status") == "streaming"
        chunks = value(kc, "reply.chunks")
        run(kc, "widget.stop(); widget.wait(10)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    rows = [
        ("idle kernel", statistics.median(idle), sorted(idle)[int(0.95 * (len(idle) - 1))], max(idle)),
        ("while a widget streams", statistics.median(during), sorted(during)[int(0.95 * (len(during) - 1))],
         max(during)),
    ]
    added = rows[1][1] - rows[0][1]
    print(f"kernel responsiveness: {args.cells} trivial cells each, idle and during a ~1,000 chunks/s stream;"
          f" {machine()}")
    print(table(["condition", "median ms", "p95 ms", "max ms"], rows))
    print(f"(the answer was still streaming after the timed cells: {streaming_throughout}; chunks so far: {chunks})")
    print(f"SUMMARY kernel_responsiveness: {added:+.1f} ms median per cell while streaming "
          f"({rows[0][1]:.1f} -> {rows[1][1]:.1f} ms)")


if __name__ == "__main__":
    main()
