"""Repeats and paired comparison over loopback against the embedded server: each row asked k
times (each its own conversation, cached per repeat, so a resumed run asks only the missing
repeats), flaky rows found and listed first, pass@k and pass^k, and a comparison that opens with
a verdict and lists the rows that regressed before the ones that improved."""

from __future__ import annotations

import uuid

import pytest

from atomemo_notebook import compare, contains, demo_dataset, evaluate, load_evaluation

from .test_evaluate import Faulty, chat

ROWS = demo_dataset("support")[:9]


def test_each_row_is_asked_k_times_and_the_flaky_rows_come_first(seeded):
    user = f"rep-{uuid.uuid4().hex[:8]}"
    hook = Faulty()
    results = evaluate(chat(seeded, "sampler", user, hook), ROWS, query="question", scorers=[contains], repeats=3,
                       concurrency=6).wait(90, bar=False)
    df = results.df
    assert hook.posts == 27 and len(df) == 27 and list(df.columns[:2]) == ["row", "repeat"]
    assert sorted(df.groupby("row")["repeat"].apply(sorted).tolist()) == [[0, 1, 2]] * 9
    assert df["conversation_id"].nunique() == 27  # each ask its own conversation
    by_row = results.by_row()
    assert len(by_row) == 9 and (by_row["asks"] == 3).all()
    flaky = by_row[by_row["flaky"]]
    # The sampler's draws are seeded: 4 of the 9 rows miss some asks but not all (flaky).
    assert len(flaky) == 4 and list(by_row["flaky"][: len(flaky)]) == [True] * len(flaky)
    assert ((flaky["pass_rate_contains"] > 0) & (flaky["pass_rate_contains"] < 1)).all()
    assert not by_row[~by_row["flaky"]]["agree"].eq(False).any()
    assert results.flaky() == [int(r) for r in flaky["row"]]
    summary = results.summary().set_index(["kind", "name"])
    pass_at = summary.loc[("pass@k", "contains (k=3)"), "mean"]
    pass_hat = summary.loc[("pass^k", "contains (k=3)"), "mean"]
    rate = summary.loc[("score", "contains"), "mean"]
    assert pass_hat < rate < pass_at <= 1  # all three pass is rarer than one, any of three commoner
    low, high = summary.loc[("score", "contains"), ["mean_low", "mean_high"]]
    assert low < rate < high
    progress = results.progress()
    assert (progress["done"], progress["total"], progress["rows_done"], progress["rows_total"]) == (27, 27, 9, 9)


def test_the_bar_counts_asks_and_rows_with_repeats(server, capsys):
    from atomemo_notebook.evaluation._results import _draw

    results = evaluate(chat(server, "echo", f"bar-{uuid.uuid4().hex[:6]}"), ["a", "b"], repeats=2)
    results.wait(60, bar=False)
    _draw(results.progress(), final=True)
    line = capsys.readouterr().err
    assert "4/4 asks (2/2 rows x 2) done, 0 failed" in line and "asks/s" in line


def test_a_resumed_run_with_repeats_asks_only_the_missing_repeats(server, tmp_path):
    cache = tmp_path / "repeats.jsonl"
    once = evaluate(chat(server, "echo", f"r1-{uuid.uuid4().hex[:6]}"), ["a", "b", "c"], cache=cache)
    once.wait(60, bar=False)
    hook = Faulty()
    thrice = evaluate(chat(server, "echo", f"r3-{uuid.uuid4().hex[:6]}", hook), ["a", "b", "c"], cache=cache,
                      repeats=3).wait(60, bar=False)
    assert hook.posts == 6  # the run asked once is the first repeat: only repeats 1 and 2 are asked
    assert thrice.df["cached"].tolist() == [True] * 3 + [False] * 6
    offline = load_evaluation(cache)
    assert sorted(zip(offline.df["row"], offline.df["repeat"], strict=True)) == [
        (r, k) for r in range(3) for k in range(3)]


def test_repeats_are_bounded_and_checked():
    with pytest.raises(ValueError, match="repeats must be a whole number from 1 to 100"):
        evaluate("atomemo", ["a"], repeats=0)
    with pytest.raises(ValueError, match="repeats must be"):
        evaluate("atomemo", ["a"], repeats=True)


def test_a_comparison_opens_with_a_verdict_and_lists_regressions_first(seeded):
    rows = demo_dataset("support")[:12]
    better = evaluate(chat(seeded, "support", f"cmp-{uuid.uuid4().hex[:6]}"), rows, query="question",
                      scorers=[contains], repeats=3, concurrency=6)
    worse = evaluate(chat(seeded, "sampler", f"cmp-{uuid.uuid4().hex[:6]}"), rows, query="question",
                     scorers=[contains], repeats=3, concurrency=6)
    better.wait(90, bar=False)
    worse.wait(90, bar=False)
    for_worse = compare(better, worse)
    # Per ask (row and repeat): the asks the sampler missed where the support app passed come first
    # (seeded: 12 of them).
    flips = for_worse.df["flip"].tolist()
    regressed = flips.count("regressed")
    assert regressed == 12 and flips[:regressed] == ["regressed"] * regressed and "improved" not in flips
    # Per row: a row passes when all its repeats pass; the rows the sampler let down are "broken".
    steady = set(better.by_row().query("pass_rate_contains == 1")["row"])
    let_down = set(worse.by_row().query("pass_rate_contains < 1")["row"])
    broken = len(steady & let_down)
    first = for_worse.verdict[0]
    assert broken == 8 and first.startswith("contains: B worse by 0.") and f"0 rows fixed, {broken} broken" in first
    measures = for_worse.measures_df().set_index("measure")
    assert measures.loc["contains", "difference"] < 0 and measures.loc["contains", "broken"] == broken
    assert measures.loc["contains", "p_value"] == pytest.approx(2 / 2 ** broken if broken > 1 else 1.0)
    assert any(line.startswith("p50 latency: ") for line in for_worse.verdict)
    # The other way round, the same rows improve, and nothing regresses.
    back = compare(worse, better)
    assert "regressed" not in back.df["flip"].tolist() and back.df["flip"].tolist().count("improved") == regressed
    # Seeded: the same runs give the same intervals.
    assert compare(better, worse).measures == for_worse.measures
    nodes = for_worse.node_changes().set_index("node")
    assert {"Search help center", "Draft answer", "Reply"} <= set(nodes.index)


def test_two_runs_of_the_sampler_are_independent_draws_with_no_difference_between_them(seeded):
    """An A/A comparison: the same questions asked twice of the same sampling app. Each ask draws
    afresh (the answers differ), and neither run is systematically better: the interval of the
    paired difference covers 0. Seeded, so it cannot flake (unseeded, a 95% interval would miss
    0 one time in twenty, by chance alone)."""
    rows = demo_dataset("support")[:20]
    first, second = (evaluate(chat(seeded, "sampler", f"aa-{uuid.uuid4().hex[:6]}"), rows, query="question",
                              scorers=[contains], repeats=3, concurrency=6).wait(90, bar=False) for _ in "ab")
    same = compare(first, second)
    line = same.measures_df().set_index("measure").loc["contains"]
    assert line["rows"] == 20 and line["low"] < 0 < line["high"], line
    assert same.verdict[0].startswith("contains: no clear difference")
    # Independent draws, not a replay: some rows' three answers differ between the runs (the
    # repeats of a row compared as a set, whichever of them arrived first).
    answers = [run.df.groupby("row")["answer"].apply(sorted).tolist() for run in (first, second)]
    changed = sum(x != y for x, y in zip(*answers, strict=True))
    assert changed == 5 and first.flaky() != second.flaky()  # seeded: 5 of the 20 rows


def test_identical_runs_compare_as_no_difference(server):
    rows = demo_dataset("support")[:6]
    run = evaluate(chat(server, "support", f"same-{uuid.uuid4().hex[:6]}"), rows, query="question",
                   scorers=[contains]).wait(60, bar=False)
    same = compare(run, run)
    contains_line = same.measures_df().set_index("measure").loc["contains"]
    assert (contains_line["difference"], contains_line["low"], contains_line["high"]) == (0.0, 0.0, 0.0)
    assert same.verdict[0].startswith("contains: no clear difference") and "0 rows fixed, 0 broken" in same.verdict[0]
    assert set(same.df["flip"]) == {""}


def test_a_comparison_report_is_one_static_page_that_loads_nothing(seeded, tmp_path):
    rows = [*demo_dataset("support")[:4], {"question": "<img src=x onerror=alert(1)> cost?", "expected": "x"}]
    a = evaluate(chat(seeded, "support", f"rep-{uuid.uuid4().hex[:6]}"), rows, query="question", scorers=[contains],
                 repeats=3)
    b = evaluate(chat(seeded, "sampler", f"rep-{uuid.uuid4().hex[:6]}"), rows, query="question", scorers=[contains],
                 repeats=3)  # seeded: the sampler misses 4 asks the support app answers
    a.wait(60, bar=False)
    b.wait(60, bar=False)
    comparison = compare(a, b)
    path = comparison.to_html(tmp_path / "report.html", title="<script>alert(1)</script> v2")
    page = path.read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; v2" in page
    assert all(line.replace("'", "&#x27;") in page for line in comparison.verdict)
    assert page.count("<circle") == sum(1 for r in comparison.df["total_s_b"] if r == r)  # one dot per paired row
    regressed = comparison.regressed()
    assert len(regressed) == 4 and page.count("<td class='regressed'>") == len(regressed)
    assert not list(tmp_path.glob(".report.html.*"))  # written all or nothing: no temporary left


def test_an_evaluation_kept_as_parquet_loads_back_whole(server, tmp_path):
    import pyarrow.parquet as pq

    rows = [{"question": q["question"], "expected": ["plan", "Team"]} for q in demo_dataset("support")[:3]]
    # Unseeded sampler: what is saved is compared with what is loaded, true whatever it drew.
    results = evaluate(chat(server, "sampler", f"pq-{uuid.uuid4().hex[:6]}"), rows, query="question",
                       scorers=[contains], repeats=2).wait(60, bar=False)
    path = results.to_parquet(tmp_path / "run.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 6 and {"row", "repeat", "status", "answer", "score_contains"} <= set(table.column_names)
    assert table.column("expected").to_pylist()[0] == '["plan", "Team"]'  # a list cell kept as its JSON
    again = load_evaluation(path)
    assert again.system == "atomemo" and again.repeats == 2
    assert again.df[["row", "repeat", "answer", "score_contains"]].equals(results.df[["row", "repeat", "answer",
                                                                                      "score_contains"]])
    assert len(again.timeline_df) == len(results.timeline_df) > 0
    assert again.by_row()["pass_rate_contains"].tolist() == results.by_row()["pass_rate_contains"].tolist()


def test_a_parquet_file_that_is_not_ours_is_refused_clearly(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), other)
    with pytest.raises(ValueError, match=r"not an evaluation saved by results\.to_parquet"):
        load_evaluation(other)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        load_evaluation(broken)


def test_a_widget_is_evaluated_through_its_chat():
    from atomemo_notebook import ChatWidget

    widget = ChatWidget(demo="echo")
    try:
        widget.booted.result(30)
        results = evaluate(widget, ["through the widget"], repeats=2).wait(60, bar=False)
        assert results.df["answer"].tolist() == ["through the widget"] * 2
    finally:
        widget.close()


def test_the_results_table_labels_each_ask_and_opens_the_one_clicked(server):
    from atomemo_notebook.evaluation._view import EvalWidget

    results = evaluate(chat(server, "echo", f"tbl-{uuid.uuid4().hex[:6]}"), ["a", "b"], repeats=2).wait(60, bar=False)
    widget = EvalWidget(results)
    assert [(r["row"], r["label"]) for r in widget.rows] == [(0, "0 · 1/2"), (1, "1 · 1/2"), (2, "0 · 2/2"),
                                                            (3, "1 · 2/2")]
    second_ask_of_a = next(r for r in widget.rows if r["label"] == "0 · 2/2")
    widget.selected = second_ask_of_a["row"]  # what a click sets
    assert widget.detail["label"] == "0 · 2/2" and widget.detail["turns"][0]["query"] == "a"
    assert results.records[widget.selected]["repeat"] == 1
