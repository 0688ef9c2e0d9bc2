"""Memory ceiling of the client against a hostile server: a 100 MB line with no break, and a
1 GiB gzip bomb as a stream, as a JSON answer and as an error body. Each case runs in a fresh
child process that reports its peak RSS; the baseline is the same child asking a normal
question (measured in the same run). Each row says which limit stopped the read.

Then what a chat holds, for every system, asked by a server (tests/hostile_server.py, in a
process of its own) whose node outputs / answer steps are hostile JSON within the wire limits:
`{}` objects up to the body or line limit, and a mix of shapes that parses (under
Limits.json_values). A fresh child per case reports its RSS over its baseline after one ask,
after two and after chat.close(), and its peak; Limits.reply_memory is the stated ceiling.

    python bench/memory_ceiling.py [--bomb-mib 1024] [--line-mib 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from _common import machine, server_process, table

CHILD = textwrap.dedent("""
    import json, resource, sys
    import atomemo_notebook as an
    base, key, app, trigger, case, fault = sys.argv[1:7]
    client = an.Client(key, base_url=base, max_retries=0, timeout=120,
                       http_client=__import__("httpx").Client(headers={"X-Atomemo-Fault": fault} if fault else {}))
    outcome = "completed"
    try:
        if case == "stream":
            for _ in client.send_message(app_id=app, trigger_id=trigger, query="hello", user_id="mem"):
                pass
        elif case == "json":
            client.get_app(app)
        elif case == "error":
            client.get_app(app)
    except an.LimitExceededError as exc:
        outcome = f"LimitExceededError({exc.limit_name})"
    except an.APIError as exc:
        outcome = f"{type(exc).__name__}, body kept: {len(str(exc.body)):,} chars"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "peak_mib": peak}))
""")


def run(info: dict, case: str, fault: str) -> dict:
    app = info["apps"]["echo"]
    out = subprocess.run([sys.executable, "-c", CHILD, info["base_url"], info["api_key"], app["app_id"],
                          app["trigger_id"], case, fault], capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


HELD_CHILD = textwrap.dedent("""
    import gc, json, resource, sys
    from tests.hostile_server import chat_for
    from atomemo_notebook.protocol._limits import Limits

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    origin, results = sys.argv[1], {}
    for system in sys.argv[2:]:  # one after another: each measured from where the last one left
        chat = chat_for(origin, system)
        gc.collect()
        base = rss()
        held, outcome, reply = [], "kept", None
        for _ in range(2):
            try:
                reply = chat.ask("hello")
                if getattr(reply, "memory", {}).get("cut_values"):
                    outcome = "cut to previews"
                if any("Limits.json_values" in a for a in reply.anomalies):
                    outcome = "events refused (json_values)"
            except Exception as exc:
                outcome = type(exc).__name__ + "(" + str(getattr(exc, "limit_name", "")) + ")"
            gc.collect()
            held.append(rss() - base)
        del reply
        chat.close()
        gc.collect()
        held.append(rss() - base)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
        results[system] = {"outcome": outcome, "held": held, "peak": peak,
                           "ceiling": getattr(Limits(), "reply_memory", 0) / 2**20}
    print(json.dumps(results))
""")
ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ("atomemo", "dify", "pipelit", "odyssey")


def held_case(systems: list[str], kind: str, chars: int, count: int) -> dict:
    """What a chat of each system holds against a hostile server sending `count` values of `kind`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}
    server = subprocess.Popen([sys.executable, "-m", "tests.hostile_server", kind, str(chars), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, cwd=ROOT, env=env)
    try:
        assert server.stdout is not None
        origin = json.loads(server.stdout.readline())["origin"]
        out = subprocess.run([sys.executable, "-c", HELD_CHILD, origin, *systems], capture_output=True, text=True,
                             timeout=600, check=True, cwd=ROOT, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def held_table(quick: bool) -> list[tuple]:
    mib = 2**20
    if quick:  # one server, one child for the four systems: peaks are the child's so far
        results = held_case(list(SYSTEMS), "mixed", mib, 2)
        return [(system, "2 x 1 MiB of mixed", r["outcome"], *r["held"], r["peak"], r["ceiling"])
                for system, r in results.items()]
    # `{}` objects up to the wire limits: a JSON answer of 64 MiB, an SSE line of 16 MiB (a Dify
    # node_finished carries the payload twice), a WebSocket message of 32 MiB; then a mix that parses.
    objects = {"atomemo": (15 * mib, 1), "dify": (7 * mib, 5), "pipelit": (30 * mib, 1), "odyssey": (63 * mib, 1)}
    rows = []
    for system in SYSTEMS:
        size, count = objects[system]
        for kind, chars, times in [("objects", size, count), ("mixed", 4 * mib, 2 if system != "dify" else 1)]:
            r = held_case([system], kind, chars, times)[system]
            rows.append((system, f"{times} x {chars / mib:g} MiB of {kind}", r["outcome"], *r["held"], r["peak"],
                         r["ceiling"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bomb-mib", type=int, default=1024)
    parser.add_argument("--line-mib", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="small sizes: well under 30 s")
    args = parser.parse_args()
    if args.quick:
        args.bomb_mib, args.line_mib = 80, 17  # just past Limits.body and Limits.line
    cases = [
        ("baseline: a normal answer", "stream", ""),
        (f"stream: one {args.line_mib} MiB line", "stream", f"no_newline={args.line_mib}; times=99; key=line"),
        (f"stream: {args.bomb_mib} MiB gzip bomb", "stream", f"gzip_bomb={args.bomb_mib}; times=99; key=bs"),
        (f"JSON answer: {args.bomb_mib} MiB gzip bomb", "json", f"gzip_bomb={args.bomb_mib}; times=99; key=bj"),
        (f"error body: {args.bomb_mib} MiB gzip bomb", "error",
         f"gzip_bomb={args.bomb_mib}; status=500; times=99; key=be"),
    ]
    rows = []
    with server_process() as info:
        for name, case, fault in cases:
            result = run(info, case, fault)
            rows.append((name, result["outcome"], result["peak_mib"]))
    base = rows[0][2]
    shown = [(n, o, p, p - base) for n, o, p in rows]
    print(f"memory ceiling: peak RSS of a fresh client process per case; default Limits; {machine()}")
    print(table(["case", "outcome", "peak RSS (MiB)", "over baseline (MiB)"], shown))
    worst = max(r[3] for r in shown)
    stopped = all(o != "completed" for _, o, _ in rows[1:])
    held = held_table(args.quick)
    print("\nwhat a chat holds (RSS MiB over the child's baseline), hostile JSON within the wire limits, "
          "default Limits:")
    print(table(["system", "each ask sends", "outcome", "after 1 ask", "after 2 asks", "after close", "peak",
                 "ceiling (reply_memory)"], held))
    ceiling = held[0][-1]
    worst_held = max(max(r[3], r[4]) for r in held)
    worst_peak = max(r[6] for r in held)
    after_close = max(r[5] for r in held)
    bounded = worst_held <= 4 * 2 * ceiling + 16
    print(f"SUMMARY memory_ceiling: every hostile case stopped by a limit ({'met' if stopped else 'MISSED'}); "
          f"peak at most {worst:.0f} MiB over the baseline of {base:.0f} MiB (against {args.bomb_mib:,} MiB offered); "
          f"a chat held at most {worst_held:.0f} MiB after two asks of hostile JSON, all systems "
          f"({'within' if bounded else 'OVER'} 4x its {2 * ceiling:.0f} MiB ceiling), {after_close:.0f} MiB after close, "
          f"peak {worst_peak:.0f} MiB")


if __name__ == "__main__":
    main()
