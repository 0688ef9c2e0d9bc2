"""A plain install works: the built wheel, installed into a fresh virtual environment with no
extras, answers a question in a ChatWidget headless (the embedded server is the default)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = textwrap.dedent("""
    import importlib.util, json
    from atomemo_notebook import ChatWidget
    widget = ChatWidget()
    reply = widget.ask("What does it cost?")
    widget.wait(60)
    print(json.dumps({"status": reply.status, "text": reply.text[:400],
                      "pandas": importlib.util.find_spec("pandas") is not None,
                      "offline": widget.header.get("offline")}))
""")


@pytest.mark.slow
def test_the_wheel_installed_without_extras_answers_in_a_chat_widget(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
                   check=True, timeout=600)
    (wheel,) = dist.glob("atomemo_notebook-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=900)
    out = subprocess.run([str(python), "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["offline"] is True
    assert "Starter" in result["text"]  # the support demo's pricing answer
    assert result["pandas"] is False  # truly no extras
