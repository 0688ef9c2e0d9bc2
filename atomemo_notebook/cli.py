"""`atomemo-notebook serve`: run the embedded server and print how to reach it."""

from __future__ import annotations

import argparse
import json
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atomemo-notebook")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the embedded Atomemo-compatible server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--db", default="atomemo-local.sqlite3",
                       help="SQLite file, or :memory: (default atomemo-local.sqlite3)")
    serve.add_argument("--api-key", default=None, help="the key clients must send (default: random)")
    serve.add_argument("--test-mode", action="store_true",
                       help="honour X-Atomemo-Fault / X-Atomemo-Pace headers")
    serve.add_argument("--allow-loopback-urls", action="store_true",
                       help="let upload-by-URL fetch loopback and private addresses (tests only)")
    serve.add_argument("--resume-window", type=float, default=120.0,
                       help="seconds a finished stream stays resumable (default 120)")
    serve.add_argument("--seed", type=int, default=None,
                       help="fix the sampler demo app's draws (default: fresh each start)")
    args = parser.parse_args(argv)

    from .server import LocalServer
    server = LocalServer(host=args.host, port=args.port, db=args.db, api_key=args.api_key,
                         test_mode=args.test_mode, resume_window=args.resume_window,
                         allow_loopback_urls=args.allow_loopback_urls, seed=args.seed)
    server.start()
    # One JSON line first, so scripts can read it before anything else is printed.
    info = server.info()
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    # Then the same for people: each system's base URL, and which key opens which app.
    lines = [f"Atomemo Chat API  {info['base_url']}  (X-Api-Key: the api_key above)",
             f"Dify service API  {info['dify_base_url']}  (Authorization: Bearer <the app's dify_api_key>)",
             f"Pipelit chat API  {info['pipelit_base_url']}  (Bearer {info['pipelit_api_key']}; workflows are "
             f"the apps' slugs; WebSocket /ws/?token=...)",
             f"OdysseyAI chat API {info['odyssey_base_url']}  (x-api-key {info['odyssey_api_key']}; workspace "
             f"{info['odyssey_workspace_id']}; agents are the apps' slugs)"]
    lines += [f"  {a['slug']:<8} app_id={a['app_id']} trigger_id={a['trigger_id']} dify_api_key={a['dify_api_key']}"
              for a in info["apps"]]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
