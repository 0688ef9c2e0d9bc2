"""Arize Phoenix, the real receiver the trace tests export to. It lives in a virtual environment
of its own (its dependency tree is large and would pin ours), built from the hashed lock
requirements-phoenix.txt (scripts/lock) and rebuilt only when the lock or the Python changes,
as scripts/test keys .venv-test. `python tests/phoenix.py` builds it ahead of a test run.

`Phoenix(workdir)` starts one on free loopback ports with its data in `workdir`, waits until
it answers, reads spans back through its REST API, and stops it."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-phoenix.txt"
VENV = Path(os.environ.get("PHOENIX_VENV", ROOT / ".venv-phoenix"))  # git-ignored
START_TIMEOUT = 300.0  # seconds for a first start on a busy machine (it migrates its database)
POLL = 0.25  # seconds between looks at a server that is starting or still ingesting


def lock_key() -> str:
    """What the venv is built from: the lock's hash and the Python that made it."""
    return f"{hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]}-{sys.version.split()[0]}"


def ensure_venv(venv: Path = VENV) -> Path:
    """The venv's python, built from the lock if it is missing or was built from another one.
    Every package pinned with its hash, --no-deps: nothing outside the lock comes in. A build
    that fails raises (the trace tests then fail: they are never skipped)."""
    key_file, python = venv / ".lock-key", venv / "bin" / "python"
    if key_file.is_file() and key_file.read_text().strip() == lock_key() and python.is_file():
        return python
    print(f"== building {venv} from {LOCK.name} (lock key {lock_key()}): a few minutes, once", file=sys.stderr)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--require-hashes",
                    "--no-deps", "-r", str(LOCK)], check=True)
    key_file.write_text(lock_key() + "\n")  # written last: a build cut short is rebuilt next time
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Phoenix:
    """One Phoenix server on 127.0.0.1, its data in `workdir`."""

    def __init__(self, python: Path, workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "phoenix.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None

    def start(self) -> Phoenix:
        env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(self.port),
               "PHOENIX_GRPC_PORT": str(free_port()),  # its OTLP/gRPC listener, unused, off any shared port
               "PHOENIX_WORKING_DIR": str(self.workdir), "PHOENIX_TELEMETRY_ENABLED": "false"}
        began = time.monotonic()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([str(self.python), "-m", "phoenix.server.main", "serve"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        with httpx.Client(timeout=5.0) as http:
            while time.monotonic() - began < START_TIMEOUT:
                if self.process.poll() is not None:
                    raise RuntimeError(f"Phoenix exited with {self.process.returncode} while starting:\n{self.tail()}")
                try:
                    if http.get(f"{self.url}/healthz").status_code == 200:
                        self.started_in = time.monotonic() - began
                        return self
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(POLL)
        self.stop()
        raise RuntimeError(f"Phoenix did not answer on {self.url} within {START_TIMEOUT:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of `project`, through Phoenix's REST API (page by page)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        with httpx.Client(timeout=30.0) as http:
            while True:
                params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                answer = http.get(f"{self.url}/v1/projects/{project}/spans", params=params)
                if answer.status_code == 404:  # the project is made by its first span
                    return []
                answer.raise_for_status()
                body = answer.json()
                out.extend(body["data"])
                cursor = body.get("next_cursor")
                if not cursor:
                    return out

    def wait_for_spans(self, project: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The project's spans once `count` have been stored: Phoenix takes an export at once and
        writes it to its database a moment later. Returns what is there at the deadline, so a
        test sees any shortfall (or surplus) itself."""
        began = time.monotonic()
        spans = self.spans(project)
        while len(spans) < count and time.monotonic() - began < timeout:
            time.sleep(POLL)
            spans = self.spans(project)
        return spans


if __name__ == "__main__":
    print(ensure_venv())
