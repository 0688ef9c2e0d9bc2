"""Memory ceiling of the client against a hostile server: a 100 MB line with no break, and a
1 GiB gzip bomb as a stream, as a JSON answer and as an error body. Each case runs in a fresh
child process that reports its peak RSS; the baseline is the same child asking a normal
question (measured in the same run). Each row says which limit stopped the read.

    python bench/memory_ceiling.py [--bomb-mib 1024] [--line-mib 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bomb-mib", type=int, default=1024)
    parser.add_argument("--line-mib", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a 64 MiB bomb and a 16 MiB line: a report for CI")
    args = parser.parse_args()
    if args.quick:
        args.bomb_mib, args.line_mib = 64, 16
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
    print(f"SUMMARY memory_ceiling: every hostile case stopped by a limit ({'met' if stopped else 'MISSED'}); "
          f"peak at most {worst:.0f} MiB over the baseline of {base:.0f} MiB (against {args.bomb_mib:,} MiB offered)")


if __name__ == "__main__":
    main()
