"""The package logger says at DEBUG every retry, resume, recovery and fault-injection
decision, and no record of it can carry an API key this process knows."""

from __future__ import annotations

import logging

import pytest

from atomemo_notebook import Client
from atomemo_notebook.protocol._log import get_logger
from atomemo_notebook.server import LocalServer

from .conftest import fault_key, ids


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="atomemo_notebook")
    return caplog


def test_retries_resumes_and_faults_are_logged_and_the_key_never(debug, echo):
    key = "sk-log-test-key-that-must-never-show-0123456789"
    with LocalServer(api_key=key, test_mode=True, chunk_size=2, chunk_delay=0, node_delay=0) as srv:
        faults = f"status=429; retry_after=0; key={fault_key()}"
        with Client(key, base_url=srv.base_url, http_client=__import__("httpx").Client(
                headers={"X-Atomemo-Fault": faults})) as client:
            events = list(client.send_message(**ids(srv.app("echo")), query="log me", user_id="log"))
        assert events[-1].event == "execution_finished"
        with Client(key, base_url=srv.base_url, http_client=__import__("httpx").Client(
                headers={"X-Atomemo-Fault": f"drop_after=3; key={fault_key()}"})) as client:
            stream = client.send_message(**ids(srv.app("echo")), query="resume me", user_id="log")
            list(stream)
        assert stream.resumes == 1
        get_logger("atomemo_notebook.test").debug("a careless line with the key %s in it", key)
    messages = [record.getMessage() for record in debug.records]
    text = "\n".join(messages)
    assert "HTTP 429, retry 1 of 2" in text
    assert "broke" in text and "resume 1" in text
    assert "fault injected on POST /api/chat/messages" in text
    assert key not in text and "[redacted]" in text
    assert all(record.name.startswith("atomemo_notebook") for record in debug.records)
