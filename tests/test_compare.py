"""Two replies side by side, over loopback: the answers' word diff and the node runs aligned."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import Chat, Client
from atomemo_notebook.model._compare import COMPARE_COLUMNS, word_diff


def chat_for(server, slug: str) -> Chat:
    app = server.app(slug)
    return Chat(Client(server.api_key, base_url=server.base_url), app_id=app["app_id"],
                trigger_id=app["trigger_id"], user_id="compare-user")


def test_an_edit_compared_word_by_word_with_its_nodes_aligned(server):
    chat = chat_for(server, "echo")
    first = chat.ask("the quick brown fox jumps")
    second = chat.edit(first.message_id, "the quick red fox jumps high")
    table = chat.compare(first.message_id, second.message_id)
    assert list(table.columns) == list(COMPARE_COLUMNS)
    answer = table.iloc[0]
    assert answer["kind"] == "answer" and answer["output_differs"]
    assert answer["output_a"] == first.text and answer["output_b"] == second.text
    nodes = table[table["kind"] == "node"]
    assert nodes["node_name"].tolist() == [s.name for s in first.nodes] and set(nodes["ran_in"]) == {"both"}
    echo = nodes[nodes["node_type"] == nodes["node_type"].iloc[-1]]
    assert echo["output_differs"].any()  # the echoing node said something else
    same = chat.compare(first.message_id, first.message_id)
    assert not same["output_differs"].any() and (same["duration_ratio"].dropna() == 1.0).all()


def test_runs_in_only_one_reply_are_shown_as_such(server):
    chat = chat_for(server, "flaky")
    ok = chat.ask("Is the blue mug in stock?")
    failed = chat.edit(ok.message_id, "Check the inventory and fail")
    rows = chat.compare_records(ok.message_id, failed.message_id)
    names_a = [r["node_name"] for r in rows if r["kind"] == "node" and r["ran_in"] != "b only"]
    names_b = [r["node_name"] for r in rows if r["kind"] == "node" and r["ran_in"] != "a only"]
    assert names_a == [s.name for s in ok.nodes] and names_b == [s.name for s in failed.nodes]
    assert any(r["ran_in"] == "a only" for r in rows)  # the apology path ran only when it did not fail
    assert rows[0]["status_a"] == "succeeded" and rows[0]["status_b"] == "failed"
    with pytest.raises(KeyError, match="no message"):
        chat.compare(ok.message_id, "not-a-message")


def test_word_diff_marks_what_changed_and_is_bounded():
    left, right, cut = word_diff("a b c d", "a x c d e")
    assert left == [{"op": "same", "text": "a "}, {"op": "del", "text": "b"}, {"op": "same", "text": " c d"}]
    assert right == [{"op": "same", "text": "a "}, {"op": "add", "text": "x"}, {"op": "same", "text": " c d"},
                     {"op": "add", "text": " e"}]
    assert not cut
    repetitive = "a b " * 500  # 2,000 tokens: past the default bound, compared whole beyond it
    assert word_diff(repetitive, repetitive + "c")[2] is True
    long_a, long_b = "w " * 10_000, "w " * 9_999 + "z "
    left, right, cut = word_diff(long_a, long_b, max_tokens=500)
    assert cut and "".join(s["text"] for s in left) == long_a and "".join(s["text"] for s in right) == long_b


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab \n", max_size=60), st.text(alphabet="ab \n", max_size=60))
def test_fuzz_the_diff_rebuilds_both_answers(a, b):
    left, right, _ = word_diff(a, b, max_tokens=20)
    assert "".join(s["text"] for s in left) == a and "".join(s["text"] for s in right) == b
    assert {s["op"] for s in left} <= {"same", "del"} and {s["op"] for s in right} <= {"same", "add"}
    # What both share reads the same on both sides.
    assert "".join(s["text"] for s in left if s["op"] == "same") == "".join(
        s["text"] for s in right if s["op"] == "same")


def test_a_regenerate_draws_another_sample_and_compare_shows_it(server):
    chat = chat_for(server, "support")
    first = chat.ask("What does it cost?")
    again = chat.regenerate(first.message_id)
    rows = chat.compare_records(first.message_id, again.message_id)
    differs = [r["node_name"] for r in rows if r["kind"] == "node" and r["output_differs"]]
    assert differs == ["Draft answer"]  # the model node: same answer, another sample
    assert '"sample": 2' in rows[[r["node_name"] for r in rows].index("Draft answer")]["output_b"]
    assert rows[0]["output_differs"] is False  # the demo's answer itself stays the same


def test_every_version_of_a_turn_is_named_by_its_own_question_and_answer(server):
    """Compare's pickers offer each version of an edited turn by what it asked and answered
    (not the shown version's question), all of them whichever version is shown."""
    from atomemo_notebook.views._view_state import MAX_VERSIONS, turn_view

    chat = chat_for(server, "echo")
    first = chat.ask("How do I rotate my API key?")
    second = chat.edit(first.message_id, "What does it cost?")
    third = chat.edit(first.message_id, "Where are my invoices?")
    for shown in (first, second, third):
        view = turn_view(chat.tree, chat.tree[shown.message_id])
        versions = view["siblings"]["versions"]
        assert [v["id"] for v in versions] == [first.message_id, second.message_id, third.message_id]
        assert [v["query"] for v in versions] == ["How do I rotate my API key?", "What does it cost?",
                                                  "Where are my invoices?"]
        assert [v["answer"] for v in versions] == [r.text[:60] for r in (first, second, third)]
    alone = chat.ask("and then?")
    assert "versions" not in turn_view(chat.tree, chat.tree[alone.message_id])["siblings"]
    for _ in range(MAX_VERSIONS + 3):
        chat.edit(alone.message_id, "again")
    view = turn_view(chat.tree, chat.tree[alone.message_id])
    assert len(view["siblings"]["versions"]) == MAX_VERSIONS  # bounded, around the shown one
    assert alone.message_id in [v["id"] for v in view["siblings"]["versions"]]
