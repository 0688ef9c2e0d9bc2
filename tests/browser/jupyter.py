"""Start JupyterLab (and with it Notebook 7) headless on loopback for browser tests."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest
from playwright.sync_api import Locator, Page

SETTINGS = {
    # No news toast in screenshots.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    # Save widget state with the notebook: the secret suite checks that state too.
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JupyterServer:
    def __init__(self, root: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.root, self.log_path = root, log
        self.port = free_port()
        self.token = secrets.token_hex(16)
        settings = root.parent / "lab-settings"
        for name, value in SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        # Everything Jupyter keeps between runs lives in this test's folder: no workspace of an
        # earlier run (or test) is restored, no config or runtime file is shared.
        private = root.parent
        environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
                       "JUPYTERLAB_WORKSPACES_DIR": str(private / "workspaces"),
                       "JUPYTER_CONFIG_DIR": str(private / "config"),
                       "JUPYTER_RUNTIME_DIR": str(private / "runtime"), **(env or {})}
        environment.pop("ATOMEMO_API_KEY", None)  # the notebooks run offline
        self._log = log.open("w")
        jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
        self.proc = subprocess.Popen(
            [jupyter, "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
             "--ServerApp.open_browser=False", f"--LabApp.workspaces_dir={private / 'workspaces'}"],
            stdout=self._log, stderr=subprocess.STDOUT, env=environment, cwd=root,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/api/status?token={self.token}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("jupyter lab did not start within 90 s")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab(self, notebook: str) -> str:
        """The notebook in a workspace of its own, reset: JupyterLab restores nothing else."""
        workspace = notebook.replace(".", "-").replace("/", "-")
        return f"{self.base}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={self.token}"

    def notebook7(self, notebook: str) -> str:
        return f"{self.base}/notebooks/{notebook}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every kernel session: a test never shares a kernel (or its load) with the next."""
        api = f"{self.base}/api/sessions"
        params = {"token": self.token}
        for session in httpx.get(api, params=params, timeout=10).json():
            httpx.delete(f"{api}/{session['id']}", params=params, timeout=30)
        deadline = time.monotonic() + 30
        while httpx.get(f"{self.base}/api/kernels", params=params, timeout=10).json():
            if time.monotonic() > deadline:
                raise RuntimeError("kernels still running 30 s after their sessions were deleted")
            time.sleep(0.2)

    def stop(self) -> None:
        # Shut down kernels through the API, then the server itself.
        try:
            httpx.post(f"{self.base}/api/shutdown?token={self.token}", timeout=10)
            self.proc.wait(timeout=20)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def open_and_run_all(page: Page, url: str, path: str, app: str = "jupyterapp") -> None:
    """Open `path` and run all its cells, once it is the current notebook and its own kernel is idle.
    (Checking "the current notebook" alone could pass on another, restored one and run-all
    would fire at it: that was the once-in-250 flake.)"""
    page.goto(url)
    page.wait_for_function(f"window.{app} !== undefined", timeout=60_000)
    current = f"window.{app}.shell.currentWidget"
    page.wait_for_function(f"{current}?.context?.path === {json.dumps(path)}", timeout=60_000)
    page.wait_for_function(
        f"{current}?.context?.path === {json.dumps(path)}"
        f" && {current}.sessionContext?.session?.kernel?.status === 'idle'", timeout=90_000)
    page.evaluate(f"window.{app}.commands.execute('notebook:run-all-cells')")


def wait_idle(page: Page, timeout: float = 120_000) -> None:
    """Every code cell has run: each prompt shows its execution count. (No '[*]' alone is not
    enough: between two cells of a run-all, the next one can still show '[ ]'.)"""
    page.wait_for_function(
        """() => { const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
               return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)); }""",
        timeout=timeout)


def run_and_find_chat(page: Page, url: str, path: str):
    """Open a notebook, run all cells, and return the first widget once every cell has run."""
    open_and_run_all(page, url, path)
    chat = page.locator(".am-root").first
    chat.wait_for(timeout=60_000)
    wait_idle(page)
    return chat


def settled_turn(chat: Locator, query: str) -> None:
    """Wait until this widget's last turn asks `query`, is settled (a short answer may never be
    seen live) and, when it succeeded, shows its answer; then bring the widget into view.
    (JupyterLab skips rendering cells out of view, and `inner_text` of a skipped cell is '':
    reads of rendered text need the widget on screen, reads of content use `text_content`.)"""
    chat.page.wait_for_function(
        """([root, query]) => { const turns = [...root.querySelectorAll('.am-turn')];
               const last = turns[turns.length - 1];
               if (!last || last.classList.contains('am-live')
                   || last.querySelector('.am-query')?.textContent !== query) return false;
               return !last.classList.contains('am-turn-succeeded')
                 || (last.querySelector('.am-answer')?.textContent ?? '').trim().length > 0; }""",
        arg=[chat.element_handle(), query], timeout=60_000)
    chat.scroll_into_view_if_needed()


def answer_of(turn: Locator) -> str:
    """A turn's answer as text, whether or not JupyterLab is rendering its cell right now."""
    return turn.locator(".am-answer").text_content() or ""


@contextlib.contextmanager
def lab_with(root: Path, notebooks: dict[str, list[str]], **server_args: object) -> Iterator[JupyterServer]:
    """A JupyterLab over `root` holding `notebooks` (file name -> its cells), each saved with a
    kernelspec (else a "Select Kernel" dialog takes every click); kernels and server stopped at the end."""
    root.mkdir(parents=True, exist_ok=True)
    for name, cells in notebooks.items():
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        nbformat.write(notebook, root / (name if name.endswith(".ipynb") else f"{name}.ipynb"))
    server = JupyterServer(root, root.parent / "jupyter.log", **server_args)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.shutdown_kernels()
        server.stop()


def lab_fixtures(name: str, notebooks: dict[str, list[str]]) -> tuple[object, object]:
    """A test module's `lab` (one JupyterLab over `notebooks` for the module) and `jupyter` (that
    lab with no kernel running before and after each test) fixtures:
    `lab, jupyter = lab_fixtures("ux", NOTEBOOKS)`."""

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
        with lab_with(tmp_path_factory.mktemp(name) / "work", notebooks) as server:
            yield server

    @pytest.fixture
    def jupyter(lab: JupyterServer) -> Iterator[JupyterServer]:
        lab.shutdown_kernels()
        yield lab
        lab.shutdown_kernels()

    return lab, jupyter


def open_chat(page: Page, jupyter: JupyterServer, name: str) -> Locator:
    """Open notebook `name` in the lab, run it, and find its chat widget."""
    return run_and_find_chat(page, jupyter.lab(f"{name}.ipynb"), f"{name}.ipynb")
