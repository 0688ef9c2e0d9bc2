"""Every bench's --quick mode, one after the other, each in its own process and bounded in
time: the SUMMARY lines for a CI log, the day a regression lands.

A report, not a gate: a missed goal still exits 0 (timings on a shared machine move); a bench
that crashes, overruns its bound or prints no SUMMARY line exits 1, after the others ran.

    python bench/quick.py [--only ask_latency,eval_throughput]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, seconds it may take): the quick runs take a fraction of that on a 2-core machine.
BENCHES = [
    ("client_throughput", 60),
    ("first_event", 30),
    ("widget_comm", 30),
    ("browser_render", 90),
    ("records", 60),
    ("kernel_responsiveness", 60),
    ("server_load", 60),
    ("ask_latency", 90),
    ("memory_ceiling", 60),
    ("eval_throughput", 90),
    ("ask_overhead", 60),
    ("graph_render", 90),
    ("eval_stats", 60),
    ("timetravel", 90),
]


def run(name: str, bound: float) -> tuple[bool, list[str], str]:
    """(ran to its end, its SUMMARY lines, what to show when it did not)."""
    proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py"), "--quick"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the bench and whatever it started
        out, _ = proc.communicate()
        return False, [], f"overran its bound of {bound:g} s\n{out[-2000:]}"
    summaries = [line for line in out.splitlines() if line.startswith("SUMMARY ")]
    if proc.returncode != 0 or not summaries:
        return False, summaries, f"exit status {proc.returncode}\n{out[-2000:]}"
    return True, summaries, ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated bench names (default: all)")
    args = parser.parse_args()
    chosen = [b for b in BENCHES if not args.only or b[0] in args.only.split(",")]
    started = time.perf_counter()
    crashed = []
    print(f"== quick benches ({len(chosen)}): a report, not a gate; compare ratios, not absolute times", flush=True)
    for name, bound in chosen:
        began = time.perf_counter()
        ok, summaries, why = run(name, bound)
        took = time.perf_counter() - began
        for line in summaries:
            print(f"{line}  [{took:.1f} s]", flush=True)
        if not ok:
            crashed.append(name)
            print(f"BENCH FAILED {name} ({took:.1f} s): {why}", flush=True)
    total = time.perf_counter() - started
    print(f"== quick benches done in {total:.0f} s" + (f"; failed: {', '.join(crashed)}" if crashed else ""),
          flush=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
