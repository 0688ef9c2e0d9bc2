"""First contact: the mistakes people make get a clear answer, never a silent wrong one."""

from __future__ import annotations

import gc
import sys

import pytest

from atomemo_notebook import ChatWidget, MissingAPIKeyError
from atomemo_notebook.protocol._systems import SYSTEMS
from atomemo_notebook.session._connect import connect

ENV = [f"{s.upper()}_{n}" for s in SYSTEMS for n in ("API_KEY", "BASE_URL", "APP_ID", "TRIGGER_ID",
                                                       "WORKFLOW", "WORKSPACE_ID", "AGENT_ID", "USER_ID",
                                                       "APP_TYPE")]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


# The settings that point at a server (not those that say what kind of app: Dify's app_type).
POINTING = [(name, arg) for name, system in SYSTEMS.items()
            for arg in ("base_url", *(s.name for s in system.settings if s.points))]


@pytest.mark.parametrize(("system", "arg"), POINTING)
def test_a_setting_without_a_key_is_an_error_naming_the_variable_never_the_demo(system, arg):
    value = "http://my-server.invalid/v1" if arg == "base_url" else "mine"
    with pytest.raises(MissingAPIKeyError) as raised:
        connect(system, **{arg: value})
    message = str(raised.value)
    assert f"{system.upper()}_API_KEY" in message and f"{arg}=" in message


@pytest.mark.parametrize(("system", "arg"), POINTING)
def test_the_same_setting_from_the_environment_is_refused_too(system, arg, monkeypatch):
    monkeypatch.setenv(f"{system.upper()}_{arg.upper()}", "http://my-server.invalid" if arg == "base_url" else "x")
    with pytest.raises(MissingAPIKeyError, match=f"{system.upper()}_{arg.upper()}"):
        connect(system)
    with pytest.raises(MissingAPIKeyError):
        ChatWidget(system=system)


@pytest.mark.parametrize("system", SYSTEMS)
def test_offline_true_and_a_named_demo_use_the_demo_whatever_the_environment(system, monkeypatch):
    monkeypatch.setenv(f"{system.upper()}_API_KEY", "a-key-that-would-go-elsewhere")
    monkeypatch.setenv(f"{system.upper()}_BASE_URL", "http://127.0.0.1:9")
    for chat in (connect(system, offline=True), connect(system, demo="echo")):
        with chat:
            assert chat.origin["offline"] is True
            assert "a-key-that-would-go-elsewhere" not in repr(chat)
            reply = chat.ask("hello")
            reply.wait(30)
            assert reply.status == "succeeded"


def test_offline_false_without_a_key_is_an_error():
    with pytest.raises(MissingAPIKeyError, match="ATOMEMO_API_KEY"):
        connect("atomemo", offline=False)


def test_nothing_set_is_the_demo_and_says_so():
    with connect("dify") as chat:
        assert chat.origin == {"offline": True, "demo": "support"}
        assert "offline demo 'support'" in repr(chat)
    widget = ChatWidget(system="dify")
    try:
        widget.booted.result(10)
        assert "offline demo" in repr(widget) and widget.header["offline"] is True
    finally:
        widget.close()


def test_only_the_atomemo_key_says_where_to_find_the_ids(monkeypatch):
    monkeypatch.setenv("ATOMEMO_API_KEY", "k" * 20)
    for build in (lambda: connect(), ChatWidget):
        with pytest.raises(ValueError, match="app_id and trigger_id") as raised:
            build()
        message = str(raised.value)
        assert "Chat Trigger" in message and "offline=True" in message and "k" * 20 not in message
    widget = ChatWidget(demo="support")  # the demo, forced, despite the key
    try:
        assert widget._orchestrator.offline
    finally:
        widget.close()


def test_a_refused_widget_leaves_nothing_half_made(monkeypatch):
    """Arguments refused: no widget comm opened, and nothing complains at garbage collection."""
    complaints: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: complaints.append((u.exc_value, u.object)))
    from ipywidgets.widgets.widget import _instances  # every open widget comm

    before = len(_instances)
    for _ in range(3):
        with pytest.raises(MissingAPIKeyError):
            ChatWidget(system="dify", base_url="http://my-dify.invalid/v1")
    gc.collect()
    assert complaints == []
    assert len(_instances) == before


def test_another_systems_setting_is_named_as_a_mistake_not_passed_on():
    with pytest.raises(TypeError, match="Dify takes no workflow; its settings: base_url"):
        connect("dify", workflow="support")
    with pytest.raises(TypeError, match="Atomemo takes no agent_id, workspace_id"):
        connect("atomemo", workspace_id="w", agent_id="a")
    with pytest.raises(ValueError, match="unknown system 'difi'; known: atomemo, dify, pipelit, odyssey"):
        connect("difi")
    # A keyword that is neither a setting nor a client option is named, with what is taken.
    with pytest.raises(TypeError, match="connect\\(\\) takes no nonsense: Dify's settings are base_url, app_type, "
                                        "web_app_code; its client's options are limits, max_resumes, max_retries"):
        connect("dify", nonsense=1)


def test_the_widget_passes_a_systems_other_settings_and_client_options_to_its_chat(server):
    from atomemo_notebook import ChatWidget

    widget = ChatWidget(system="dify", web_app_code="app-code-1", timeout=12.5, layout={"width": "300px"},
                        **server.demo("dify"))
    try:
        widget.booted.result(30)
        assert widget.chat.backend.plans.web_app_code == "app-code-1"  # the run-events route of Dify 1.13
        assert widget.chat.client.options()["timeout"] == 12.5
        assert widget.layout.width == "300px"  # the widget's own traits stay the widget's
    finally:
        widget.close()
    with pytest.raises(TypeError, match="connect\\(\\) takes no nonsense"):
        ChatWidget(system="dify", nonsense=1, **server.demo("dify"))
    with pytest.raises(TypeError, match="web_app_code: settings of a chat ChatWidget builds"):
        ChatWidget(chat=widget.chat, web_app_code="x")


@pytest.mark.parametrize("name", SYSTEMS)
def test_each_system_is_one_record_that_every_part_reads(name):
    from atomemo_notebook.protocol._systems import capabilities_of, system
    from atomemo_notebook.session import _runtime as runtime
    from atomemo_notebook.transport._base_client import client_class

    record = system(name.upper())
    assert record.name == name and record.dialect.system == name
    assert capabilities_of(name) is record.capabilities
    assert client_class(name).DIALECT is record.dialect and client_class(name, True).DIALECT is record.dialect
    demo = runtime.demo_server().demo(name)
    assert {"api_key", "base_url"} | {s.name for s in record.settings if s.required} <= set(demo)
    with connect(name, demo="echo") as chat:
        assert chat.system == name and chat.capabilities is record.capabilities


@pytest.mark.parametrize(("system", "arg"), [("odyssey", "agent_id"), ("pipelit", "workflow")])
def test_offline_a_setting_naming_a_demo_app_talks_to_that_app_never_another(system, arg):
    with connect(system, offline=True, **{arg: "echo"}) as chat:
        assert chat.origin == {"offline": True, "demo": "echo"}
        assert chat.backend.coordinates()[arg] == "echo"
        assert "hello there" in chat.ask("hello there").text  # the echo app, not the support one
    with pytest.raises(ValueError, match=f"{arg}='nobody'.*its apps: support"):
        connect(system, offline=True, **{arg: "nobody"})
    with pytest.raises(ValueError, match="demo='support' was asked for"):
        connect(system, demo="support", **{arg: "echo"})
