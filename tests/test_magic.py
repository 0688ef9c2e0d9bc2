"""%%atomemo: the cell is the question; the next cell continues the conversation."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

import atomemo_notebook.views._magic as magic


@pytest.fixture
def shell(monkeypatch):
    monkeypatch.delenv("ATOMEMO_API_KEY", raising=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "atomemo_notebook")
    yield ip
    InteractiveShell.clear_instance()


def test_plain_text_streams_and_continues_the_conversation(shell, capsys):
    first = shell.run_cell_magic("atomemo", "--demo echo --new", "hello from a cell")
    out = capsys.readouterr().out
    assert "hello from a cell" in out and "[succeeded" in out
    second = shell.run_cell_magic("atomemo", "", "and again")
    assert second.parent_id == first.message_id
    assert second.conversation_id == first.conversation_id


def test_widget_frontend_gets_a_compact_view(shell, monkeypatch):
    shown = []
    monkeypatch.setattr(magic, "_has_widget_frontend", lambda _: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    shell.run_cell_magic("atomemo", "--demo echo --new", "in a widget")
    (view,) = shown
    view.wait()
    assert view.compact and view.focus_id
    assert [m["answer"] for m in view.transcript["turns"] if m["id"] == view.focus_id] == ["in a widget"]
    shell.run_cell_magic("atomemo", "", "second cell")
    second = shown[-1]
    second.wait()
    focused = next(m for m in second.transcript["turns"] if m["id"] == second.focus_id)
    assert focused["parent_id"] == view.focus_id and view.focus_id != second.focus_id


def test_empty_cell_and_bad_flags_are_clear_errors(shell):
    with pytest.raises(ValueError, match="needs the question"):
        shell.run_cell_magic("atomemo", "", "   ")
    with pytest.raises(ValueError, match="usage"):
        shell.run_cell_magic("atomemo", "--bogus", "x")
