"""compare(a, b) opened row by row, over loopback against the embedded server: the widget's
table (the rows that regressed first), and a row opened as both runs side by side (answers
word by word, node runs aligned, errors and scores), as the chat's Compare tab draws two
replies; and a repeated row's asks, each openable, in the results table."""

from __future__ import annotations

import uuid

import pytest

from atomemo_notebook import compare, contains, evaluate
from atomemo_notebook.evaluation._comparison_view import ComparisonWidget
from atomemo_notebook.evaluation._view import EvalWidget
from atomemo_notebook.views._widget_protocol import COMPARISON_TRAITS, EVAL_TRAITS, check

from .test_evaluate import chat

# The support app answers all three; the flaky app (an inventory pipeline) apologises for the
# first (regressed: its keyword is gone), fails the second at its Fetch inventory node
# (regressed: succeeded -> failed) and answers the third with the keyword (improved).
ROWS = [{"query": "How do I rotate my API key?", "expected": "rotate"},
        {"query": "Check the inventory and fail", "expected": "inventory"},
        {"query": "Is the blue mug in stock?", "expected": "inventory"}]


@pytest.fixture(scope="module")
def pair(server):
    user = f"cmpv-{uuid.uuid4().hex[:6]}"
    a = evaluate(chat(server, "support", user), ROWS, scorers=[contains]).wait(60, bar=False)
    b = evaluate(chat(server, "flaky", user), ROWS, scorers=[contains]).wait(60, bar=False)
    return a, b


def test_the_widget_lists_the_regressed_row_first_and_opens_both_runs(pair):
    a, b = pair
    comparison = compare(a, b)
    widget = ComparisonWidget(comparison)
    for name, shape in COMPARISON_TRAITS.items():
        check(getattr(widget, name), shape, name)
    assert widget.verdict == comparison.verdict and widget.score_columns == ["contains"]
    assert [(r["row"], r["label"], r["flip"]) for r in widget.rows] == [
        (0, "0", "regressed"), (1, "1", "regressed"), (2, "2", "improved")]
    first = widget.rows[1]  # the run that failed
    assert (first["status_a"], first["status_b"], first["query"]) == ("succeeded", "failed", ROWS[1]["query"])
    assert widget.pair == {} and widget.hidden_rows == 0
    widget.selected = first["row"]  # what a click sets
    check(widget.pair, COMPARISON_TRAITS["pair"], "pair")
    opened = widget.pair
    assert opened["flip"] == "regressed" and opened["query"] == ROWS[1]["query"]
    view = opened["compare"]
    assert (view["status_a"], view["status_b"]) == ("succeeded", "failed")
    # Both answers, whole, rebuilt from their diff segments.
    assert "".join(s["text"] for s in view["answer_a"]) == a.records[1]["answer"]
    assert "".join(s["text"] for s in view["answer_b"]) == (b.records[1]["answer"] or "")
    # Both runs' node runs, aligned: each side lists its own reply's nodes in order.
    names_a = [r["node_name"] for r in view["rows"] if r["ran_in"] != "b only"]
    names_b = [r["node_name"] for r in view["rows"] if r["ran_in"] != "a only"]
    assert names_a == [s.name for s in a.replies[1][-1].nodes]
    assert names_b == [s.name for s in b.replies[1][-1].nodes]
    assert any(r["node_name"] == "Fetch inventory" and r["status_b"] == "failed" for r in view["rows"])
    assert opened["error_a"] is None and opened["error_b"] and "Fetch inventory" in str(b.records[1]["failed_node"])
    assert opened["scores"] == [("contains", a.records[1]["score_contains"], b.records[1]["score_contains"])]
    assert comparison.pair(first["row"]) == opened  # the Python way to the same data


def test_open_selects_a_row_by_the_tables_index_and_refuses_others(pair):
    comparison = compare(*pair)
    row = int(comparison.regressed().index[0])
    widget = comparison.open(row)
    assert widget.selected == row and widget.pair["label"] == "0" and widget.pair["flip"] == "regressed"
    assert comparison.open().pair == {}
    for wrong in (len(comparison), -1, "1"):
        with pytest.raises(IndexError, match="rows 0 to 2"):
            comparison.open(wrong)  # type: ignore[arg-type]
    improved = int(comparison.improved().index[0])
    widget.selected = improved  # another click: the row that improved
    assert widget.pair["flip"] == "improved" and widget.pair["label"] == "2"
    assert widget.pair["scores"] == [("contains", False, True)]
    widget.selected = -1
    assert widget.pair == {}


def test_a_comparison_shows_as_the_widget_with_the_static_page_beside_it(pair):
    data = compare(*pair)._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "regressed" in data["text/html"] and "<script" not in data["text/html"]


def test_a_row_absent_from_b_opens_with_one_side_empty(server, pair):
    a, _ = pair
    user = f"cmpv-{uuid.uuid4().hex[:6]}"
    b = evaluate(chat(server, "support", user), ROWS[:2], scorers=[contains]).wait(60, bar=False)
    comparison = compare(a, b)
    absent = next(r for r in ComparisonWidget(comparison).rows if r["status_b"] == "absent")
    opened = comparison.pair(absent["row"])
    assert opened["compare"]["status_b"] == "absent" and opened["compare"]["answer_b"] == []
    assert all(r["ran_in"] == "a only" for r in opened["compare"]["rows"])


def test_a_repeated_rows_asks_are_listed_in_its_run_each_openable(server):
    results = evaluate(chat(server, "echo", f"asks-{uuid.uuid4().hex[:6]}"), ["a", "b"], repeats=3,
                       scorers=[lambda row, reply: reply.text == row["query"]]).wait(60, bar=False)
    widget = EvalWidget(results)
    second_ask_of_b = next(r["row"] for r in widget.rows if r["label"] == "1 · 2/3")
    widget.selected = second_ask_of_b  # a click on one ask of row 1
    check(widget.detail, EVAL_TRAITS["detail"], "detail")
    asks = widget.detail["asks"]
    assert [a["label"] for a in asks] == ["1 · 1/3", "1 · 2/3", "1 · 3/3"]
    assert all(a["status"] == "succeeded" and a["passed"] is True for a in asks)
    assert second_ask_of_b in [a["row"] for a in asks]
    third = asks[2]["row"]
    widget.selected = third  # a click on the third ask in the run's list opens it
    assert widget.detail["label"] == "1 · 3/3" and widget.detail["turns"][0]["query"] == "b"
    assert results.records[third]["repeat"] == 2 and widget.detail["asks"] == asks
    once = evaluate(chat(server, "echo", f"asks-{uuid.uuid4().hex[:6]}"), ["a"]).wait(60, bar=False)
    single = EvalWidget(once)
    single.selected = 0
    assert "asks" not in single.detail  # asked once: nothing to choose between
