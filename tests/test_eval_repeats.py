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
    # Per input row: the rows the sampler let down where the support app passed every ask come first
    # (seeded: 8 of them).
    flips = for_worse.df["flip"].tolist()
    regressed = flips.count("regressed")
    assert len(flips) == 12 and regressed == 8 and flips[:regressed] == ["regressed"] * regressed
    assert "improved" not in flips
    # Per row: a row passes when all its repeats pass; the rows the sampler let down are "broken".
    steady = set(better.by_row().query("pass_rate_contains == 1")["row"])
    let_down = set(worse.by_row().query("pass_rate_contains < 1")["row"])
    broken = len(steady & let_down)
    first = for_worse.verdict[0]
    assert broken == 8 and first.startswith("contains: B worse by 0.") and f"0 rows fixed, {broken} broken" in first
    assert regressed == broken  # the table lists the rows the verdict counts
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
                 repeats=3)  # seeded: the sampler misses 4 asks, in 2 rows, the support app answers
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
    assert len(regressed) == 2 and page.count("<td class='regressed'>") == len(regressed)  # rows, not asks
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
    assert again.timeline_df["node_name"].tolist() == results.timeline_df["node_name"].tolist()  # names, not ids
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


def test_the_rows_listed_as_regressed_and_improved_are_the_verdicts_broken_and_fixed(server):
    # Neither run is perfect (two runs of the sampling app, three asks a row) and one side asked
    # once: whatever the draws, the table lists exactly the rows the verdict counts.
    rows = demo_dataset("support")[:12]

    def run(repeats: int):
        return evaluate(chat(server, "sampler", f"flip-{uuid.uuid4().hex[:6]}"), rows, query="question",
                        scorers=[contains], repeats=repeats, concurrency=6).wait(90, bar=False)

    first, second, once = run(3), run(3), run(1)
    for a, b in ((first, second), (second, first), (once, first), (first, once)):
        comparison = compare(a, b)
        line = comparison.measures_df().set_index("measure").loc["contains"]
        assert len(comparison) == 12 and comparison.paired_rows == 12  # one line per input row
        assert len(comparison.regressed()) == line["broken"] and len(comparison.improved()) == line["fixed"]
        assert set(comparison.df["asks_a"]) == {a.repeats} and set(comparison.df["asks_b"]) == {b.repeats}
        for place in comparison.regressed().index:  # opened: B's ask that let the row down
            pair = comparison.pair(int(place))
            assert pair["flip"] == "regressed" and ", B ask " in pair["label"]
            record_b = b.records[comparison._places[int(place)][1]]
            assert record_b["score_contains"] in (0, False) or record_b["status"] != "succeeded"


def test_a_slower_or_costlier_b_reads_its_interval_low_to_high():
    from atomemo_notebook.evaluation._comparison import _amount_verdict
    from atomemo_notebook.evaluation.stats import Interval

    assert _amount_verdict("p50 latency", Interval(80, 40, 120, 50), "ms", "slower", "faster") == \
        "p50 latency: B slower by 80 ms [40, 120]"
    assert _amount_verdict("p50 latency", Interval(-80, -120, -40, 50), "ms", "slower", "faster") == \
        "p50 latency: B faster by 80 ms [40, 120]"
    # A cost per ask of a few thousandths keeps two significant digits, not "0.00 [0.00, 0.00]".
    assert _amount_verdict("cost", Interval(0.002, 0.001, 0.003, 50), "", "costlier", "cheaper") == \
        "cost: B costlier by 0.0020 [0.0010, 0.0030]"


def test_runs_of_different_rows_are_refused_by_name(server):
    a = evaluate(chat(server, "echo", f"keys-{uuid.uuid4().hex[:6]}"), ["one", "two"]).wait(60, bar=False)
    b = evaluate(chat(server, "echo", f"keys-{uuid.uuid4().hex[:6]}"), ["three"]).wait(60, bar=False)
    with pytest.raises(ValueError, match=r"share no row \(2 rows in a, 1 in b\)"):
        compare(a, b)
    partly = evaluate(chat(server, "echo", f"keys-{uuid.uuid4().hex[:6]}"), ["one"]).wait(60, bar=False)
    comparison = compare(a, partly)
    assert comparison.paired_rows == 1 and "of 1 rows in both (1 only in a)" in repr(comparison)
    assert list(comparison.df.sort_values("row")["status_b"]) == ["succeeded", "absent"]


def test_without_a_scorer_a_row_whose_answers_differ_is_flaky(seeded):
    # Seeded: some row's three answers differ for certain (unseeded, ~1 run in 15,000 would have none).
    results = evaluate(chat(seeded, "sampler", f"noscore-{uuid.uuid4().hex[:6]}"), demo_dataset("support")[:12],
                       query="question", repeats=3, concurrency=6).wait(90, bar=False)
    table = results.by_row()
    assert (~table["agree"]).any()  # the sampler's asks of a row do not all answer alike
    assert (table["flaky"] == ~table["agree"]).all()  # no scorer: flaky is "its answers differ"
    assert results.flaky() == [int(r) for r in table[~table["agree"]]["row"]]


@pytest.mark.parametrize(("system", "reports"), [("atomemo", False), ("dify", True), ("pipelit", True),
                                                  ("odyssey", False)])
def test_usage_totals_where_a_system_reports_them_and_a_note_where_it_does_not(system, reports, monkeypatch):
    for name in ("API_KEY", "BASE_URL"):
        monkeypatch.delenv(f"{system.upper()}_{name}", raising=False)
    from atomemo_notebook import connect
    from atomemo_notebook.session._runtime import submit

    rows = demo_dataset("support")[:4]
    chat = connect(system, demo="support", asynchronous=True)
    try:
        first = evaluate(chat, rows, query="question", scorers=[contains], repeats=2).wait(60, bar=False)
        second = evaluate(chat, rows, query="question", scorers=[contains], repeats=2).wait(60, bar=False)
    finally:
        submit(chat.close()).result(10)
    usage = first.summary().query("kind == 'usage'").set_index("name")
    measures = set(compare(first, second).measures_df()["measure"])
    if reports:
        assert usage.loc["total_tokens", "runs"] == 8 and usage.loc["total_tokens", "mean"] > 0
        assert "total_tokens" in measures  # compared like any amount, with its interval
    else:
        assert list(usage.index) == ["usage"] and "total_tokens" not in measures
        assert ("OdysseyAI" in usage.loc["usage", "note"]) == (system == "odyssey")
    overall = first.summary().query("kind == 'rows'").iloc[0]
    assert overall["p50_ms"] is not None and overall["p95_ms"] >= overall["p50_ms"]
    for p in ("p50", "p95"):  # every percentile with its interval, or none where 8 asks are too few
        low, high = overall[f"{p}_low_ms"], overall[f"{p}_high_ms"]
        assert (low != low and high != high) or low <= overall[f"{p}_ms"] <= high


def test_a_run_compared_with_itself_changes_no_node(server):
    run = evaluate(chat(server, "support", f"nodes-{uuid.uuid4().hex[:6]}"), ROWS, query="question",
                   scorers=[contains]).wait(60, bar=False)
    nodes = compare(run, run).node_changes().set_index("node")
    assert {"Search help center", "Draft answer", "Reply"} <= set(nodes.index)
    assert (nodes["change_ms"] == 0).all() and (nodes["low"] == 0).all() and (nodes["high"] == 0).all()
    assert (nodes["rows"] > 0).all() and (nodes["p50_ms_a"] == nodes["p50_ms_b"]).all()
