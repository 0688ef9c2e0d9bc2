"""The neutral wire (protocol/_wire.py): every system's stream yields its Event, a frame that is
not JSON is its MalformedFrame, and the model and the views read its Message, Conversation and
FileRef; Atomemo's modules still hand out the same objects for code that reads them from there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import atomemo_notebook
from atomemo_notebook.protocol import _wire as wire
from atomemo_notebook.protocol.atomemo import events as atomemo_events
from atomemo_notebook.protocol.atomemo import models as atomemo_models
from atomemo_notebook.protocol.dify.events import parse_frame as dify_frame
from atomemo_notebook.protocol.odyssey.events import parse_document as odyssey_document
from atomemo_notebook.protocol.pipelit.events import parse_message as pipelit_message

from .test_layers import imports, module_name

PACKAGE = Path(atomemo_notebook.__file__).parent
SYSTEM_FOLDERS = ("atomemo", "dify", "pipelit", "odyssey")
# Rewritten in parallel (the views' rework); after merging, /tmp/wire_rename.py moves its imports.
PENDING = {"atomemo_notebook.views._widget"}


@pytest.mark.parametrize("name", ["Event", "MalformedFrame"])
def test_atomemos_events_module_hands_out_the_wire_classes(name):
    assert getattr(atomemo_events, name) is getattr(wire, name)


@pytest.mark.parametrize("name", ["Conversation", "FileRef", "Message", "WireModel", "format_datetime",
                                  "parse_datetime"])
def test_atomemos_models_module_hands_out_the_wire_types(name):
    assert getattr(atomemo_models, name) is getattr(wire, name)


def test_the_old_home_of_the_stream_policy_still_answers():
    from atomemo_notebook.transport import _client as client
    from atomemo_notebook.transport import _resume as resume

    assert resume.StreamState is client.StreamState
    with pytest.raises(AttributeError):
        resume.NoSuchName  # noqa: B018


@pytest.mark.parametrize("parse", [atomemo_events.parse_frame, dify_frame, pipelit_message, odyssey_document])
def test_every_systems_parser_yields_the_wire_types(parse):
    bad = parse("{not json")
    assert type(bad) is wire.MalformedFrame and bad.event == wire.MALFORMED == atomemo_events.Name.MALFORMED
    assert "not json" in bad.raw
    good = parse('{"event": "x", "type": "x", "data": {}}')
    assert isinstance(good, wire.Event) and not isinstance(good, wire.MalformedFrame)


def wire_names_from_a_system(path: Path, text: str | None = None) -> list[str]:
    """Wire names this module imports from a system's folder rather than from protocol/_wire.py."""
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.ImportFrom):
            target = (imports(path, ast.unparse(node)) or [""])[0]
            if target.split(".")[:3] in (["atomemo_notebook", "protocol", f] for f in SYSTEM_FOLDERS):
                found += [f"{target}.{a.name}" for a in node.names if a.name in wire.__all__]
    return found


def test_nothing_outside_a_systems_folder_reads_a_wire_type_from_it():
    inside = tuple(f"atomemo_notebook.protocol.{f}." for f in SYSTEM_FOLDERS)
    problems = {name: found for path in sorted(PACKAGE.rglob("*.py"))
                if not (name := module_name(path)).startswith(inside) and name not in PENDING
                and (found := wire_names_from_a_system(path))}
    assert problems == {}


def test_the_check_catches_a_wire_type_read_from_a_system():
    reply = PACKAGE / "model" / "reply.py"
    assert wire_names_from_a_system(reply, "from ..protocol.atomemo.events import ChatMessage, Event\n") == [
        "atomemo_notebook.protocol.atomemo.events.Event"]
    assert wire_names_from_a_system(reply, "from ..protocol.dify._calls import Message\n") == [
        "atomemo_notebook.protocol.dify._calls.Message"]
    assert wire_names_from_a_system(reply, "from ..protocol._wire import Event, Message\n") == []
