"""`atomemo-notebook serve` as a newcomer uses it: read the JSON line, then run the spec's
curl examples with the printed base URL, key and ids."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def served() -> Iterator[dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "atomemo_notebook", "serve", "--db", ":memory:", "--test-mode",
         "--allow-loopback-urls"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode is not None


def curl(*args: str) -> str:
    exe = shutil.which("curl")
    assert exe, "curl is part of the machine image; the CLI test needs it"
    result = subprocess.run([exe, "-sS", "--fail-with-body", *args], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def sse(text: str) -> list[dict]:
    # Data blocks only: Dify's `event: ping` keep-alives carry none.
    return [json.loads(block[len("data: "):]) for block in text.split("\n\n") if block.startswith("data: ")]


def test_the_first_line_says_how_to_connect(served):
    assert set(served) == {"base_url", "dify_base_url", "pipelit_base_url", "pipelit_api_key", "odyssey_base_url",
                           "odyssey_api_key", "odyssey_workspace_id", "api_key", "apps"}
    assert served["base_url"].startswith("http://127.0.0.1:") and served["base_url"].endswith("/api")
    assert served["dify_base_url"] == served["base_url"].removesuffix("/api") + "/v1"
    assert {a["name"] for a in served["apps"]} == {"Support Assistant", "Order Agent", "Flaky Pipeline",
                                                   "Sampling Assistant", "Thinking Assistant", "Refund Approval", "Echo"}
    assert all(set(a) >= {"app_id", "trigger_id", "name", "dify_api_key"} for a in served["apps"])
    keys = [a["dify_api_key"] for a in served["apps"]]
    assert len(set(keys)) == 7 and all(k.startswith("app-") and served["api_key"] not in k for k in keys)


def test_dify_reference_curl_works_with_the_printed_key(served):
    """Dify's API reference example, with the printed base URL and the app's key."""
    base = served["dify_base_url"]
    app = next(a for a in served["apps"] if a["slug"] == "support")
    auth = f"Authorization: Bearer {app['dify_api_key']}"
    events = sse(curl("-X", "POST", f"{base}/chat-messages", "--header", auth,
                      "--header", "Content-Type: application/json",
                      "--data-raw", json.dumps({"inputs": {}, "query": "What are the specs of the iPhone 13 Pro Max?",
                                                "response_mode": "streaming", "conversation_id": "",
                                                "user": "abc-123", "files": []})))
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started" and names[-1] == "workflow_finished"
    assert names.index("message_end") < names.index("workflow_finished") and "message" in names
    conv = events[0]["conversation_id"]
    listed = json.loads(curl(f"{base}/messages?user=abc-123&conversation_id={conv}", "--header", auth))
    assert [m["conversation_id"] for m in listed["data"]] == [conv] and listed["has_more"] is False
    blocking = json.loads(curl("-X", "POST", f"{base}/chat-messages", "--header", auth,
                               "--header", "Content-Type: application/json",
                               "--data-raw", json.dumps({"query": "and the price?", "user": "abc-123",
                                                         "conversation_id": conv})))
    assert blocking["mode"] == "advanced-chat" and blocking["answer"] and blocking["conversation_id"] == conv


def test_spec_curl_examples_work_verbatim(served):
    base, key = served["base_url"], served["api_key"]
    app = next(a for a in served["apps"] if a["slug"] == "support")

    created = sse(curl("-X", "POST", f"{base}/chat/messages",
                       "--header", f"X-Api-Key: {key}",
                       "--header", "Content-Type: application/json",
                       "--data-raw", json.dumps({
                           "appId": app["app_id"], "triggerId": app["trigger_id"],
                           "query": "What are the features of your product?",
                           "userId": "user-123", "source": "api"})))
    assert created[0]["event"] == "message_created" and created[-1]["event"] == "execution_finished"
    conv, prev = created[0]["data"]["conversation_id"], created[0]["data"]["message_id"]

    follow = sse(curl("-X", "POST", f"{base}/chat/messages",
                      "--header", f"X-Api-Key: {key}",
                      "--header", "Content-Type: application/json",
                      "--data-raw", json.dumps({
                          "appId": app["app_id"], "triggerId": app["trigger_id"],
                          "query": "Tell me more about that", "userId": "user-123",
                          "conversationId": conv, "parentId": prev})))
    assert follow[0]["data"]["conversation_id"] == conv

    file_message = sse(curl("-X", "POST", f"{base}/chat/messages",
                            "--header", f"X-Api-Key: {key}",
                            "--header", "Content-Type: application/json",
                            "--data-raw", json.dumps({
                                "appId": app["app_id"], "triggerId": app["trigger_id"],
                                "query": {"__type__": "file_ref", "source": "oss",
                                          "filename": "document.pdf", "extension": ".pdf",
                                          "mimeType": "application/pdf", "size": 102400,
                                          "resKey": "20251020/abc-123.pdf", "remoteUrl": None},
                                "userId": "user-123"})))
    assert file_message[-1]["event"] == "execution_finished"

    assert json.loads(curl("-X", "GET", f"{base}/chat/app/{app['app_id']}"))["name"] == "Support Assistant"
    conversations = json.loads(curl(
        "-X", "GET",
        f"{base}/chat/conversations?appId={app['app_id']}&triggerId={app['trigger_id']}&userId=user-123",
        "--header", f"X-Api-Key: {key}"))["items"]
    assert conv in [c["id"] for c in conversations]
    messages = json.loads(curl("-X", "GET", f"{base}/chat/messages?conversation_id={conv}",
                               "--header", f"X-Api-Key: {key}"))["items"]
    assert len(messages) == 2
    path = json.loads(curl(
        "-X", "GET",
        f"{base}/chat/messages?conversation_id={conv}&end_message_id={messages[1]['id']}&include_end=true",
        "--header", f"X-Api-Key: {key}"))["items"]
    assert [m["id"] for m in path] == [prev, messages[1]["id"]]
    resumed = sse(curl("-X", "GET", f"{base}/chat/messages/{prev}/resume_stream",
                       "--header", f"X-Api-Key: {key}"))
    assert [e["event"] for e in resumed] == [e["event"] for e in created]

    token = json.loads(curl("-X", "GET", f"{base}/chat/media/uptoken?mimeType=application/pdf",
                            "--header", f"X-Api-Key: {key}"))
    curl("-X", "PUT", f"{token['uploadHost']}/{token['resKey']}?{token['uptoken']}",
         "--header", "Content-Type: application/pdf", "--data-binary", "%PDF-1.4 local file")
    link = json.loads(curl("-X", "GET", f"{base}/chat/media/download_url?resKey={token['resKey']}",
                           "--header", f"X-Api-Key: {key}"))["data"]
    assert curl(link) == "%PDF-1.4 local file"
    # Upload by URL: the spec's example.com is unreachable offline; the server's own link stands in.
    ref = json.loads(curl("-X", "POST", f"{base}/chat/media/upload",
                          "--header", f"X-Api-Key: {key}",
                          "--header", "Content-Type: application/json",
                          "--data-raw", json.dumps({"url": link})))
    assert ref["__type__"] == "file_ref" and ref["size"] == len("%PDF-1.4 local file")
    assert list(ref) == ["__type__", "source", "filename", "extension", "mimeType", "size", "resKey",
                         "remoteUrl"]


@pytest.mark.slow
def test_demo_execute_shows_the_first_answer_and_its_timing():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "VENV": sys.prefix, "NO_SETUP": "1"}  # this environment is set up already
    env.pop("ATOMEMO_API_KEY", None)
    out = subprocess.run(["bash", str(root / "scripts" / "demo"), "--execute"], capture_output=True, text=True,
                         cwd=root, env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Q: How much does it cost?" in out.stdout
    assert "A: Here are our current plans" in out.stdout and "| Starter |" in out.stdout
    assert "succeeded · first token" in out.stdout and "whole answer" in out.stdout
