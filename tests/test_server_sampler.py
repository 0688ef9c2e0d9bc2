"""The sampler demo app draws each ask independently, as a model at temperature > 0 does: right
most times, not always, with no drift between the first asks of a question and later ones; a
seed (ServerConfig.seed, LocalServer(seed=...)) fixes the draws. Every test here is seeded, so
none can flake."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from atomemo_notebook import connect
from atomemo_notebook.server import LocalServer
from atomemo_notebook.server._demo import HEDGE, MAX_SAMPLED, MISS_RATE, Sampler, difficulty

from .conftest import FAST

QUESTIONS = [f"How much does the Team plan cost? #{i:04d}" for i in range(3000)]  # difficulty: its last 4 bytes


def misses(sampler: Sampler, questions: list[str], asks: int) -> int:
    return sum(sampler.draw(q) < MISS_RATE[difficulty(q)] for q in questions for _ in range(asks))


def test_each_difficulty_misses_at_its_rate():
    by_level = {level: [q for q in QUESTIONS if difficulty(q) == level] for level in range(3)}
    assert all(len(qs) > 800 for qs in by_level.values())  # the text spreads questions over all three
    sampler = Sampler(seed=1)
    for level, questions in by_level.items():
        rate = misses(sampler, questions, 3) / (3 * len(questions))
        # Over 2,400+ asks the rate's standard error is under 0.011: 0.05 is more than 4.5 of them.
        assert rate == pytest.approx(MISS_RATE[level], abs=0.05), (level, rate)


def test_a_second_run_of_the_same_questions_misses_as_often_as_the_first():
    """What the old per-question count broke: its second run of a hard question missed twice
    where the first missed once. Draws are exchangeable: runs 1 and 2 (asks 0-2, 3-5) alike."""
    hard = [q for q in QUESTIONS if difficulty(q) == 2][:1000]
    sampler = Sampler(seed=2)
    first, second = misses(sampler, hard, 3), misses(sampler, hard, 3)
    # Each count: 3,000 asks at 1/2, standard deviation 27; their difference's sd is 39, and
    # 200 is over 5 of them (a systematic shift of 1 ask in 3 would be 1,000).
    assert abs(first - second) < 200, (first, second)


def test_the_draws_of_a_question_do_not_depend_on_which_others_came_between():
    one, other = Sampler(seed=3), Sampler(seed=3)
    a = [one.draw("cost?") for _ in range(5)]
    b = []
    for i in range(5):  # other questions asked in between: "cost?" draws the same five
        other.draw(f"question {i}")
        b.append(other.draw("cost?"))
    assert a == b and len(set(a)) == 5 and all(0 <= x < 1 for x in a)
    assert [Sampler(seed=4).draw("cost?") for _ in range(3)] != [Sampler(seed=3).draw("cost?") for _ in range(3)]


def test_unseeded_samplers_draw_differently():
    # Two fresh 64-bit seeds agree with chance 2**-64; five draws alike otherwise, far less.
    assert [Sampler().draw("cost?") for _ in range(5)] != [Sampler().draw("cost?") for _ in range(5)]


def test_the_counts_it_remembers_are_bounded_and_forgetting_repeats_no_draw():
    sampler = Sampler(seed=5)
    first = sampler.draw("cost?")
    for i in range(MAX_SAMPLED):
        sampler.draw(f"q{i}")
    assert len(sampler._asks) <= MAX_SAMPLED
    assert "cost?" not in sampler._asks  # forgotten ...
    assert sampler.draw("cost?") != first  # ... yet its next draw is a new one, not its first again


def test_a_seed_is_a_whole_number():
    for bad in (1.5, "1", True):
        with pytest.raises(TypeError, match="seed must be a whole number or None"):
            Sampler(seed=bad)  # type: ignore[arg-type]


def ask_all(settings: dict[str, Any], questions: list[str], repeats: int) -> list[str]:
    with connect("atomemo", **settings, user_id="seed") as chat:
        chat.backend.client._http.headers["X-Atomemo-Pace"] = "chunk_size=4096; chunk_delay=0; node_delay=0"
        answers = []
        for question in questions * repeats:  # one at a time: a question's asks reach it in order
            reply = chat.ask(question)
            assert reply.wait(30)
            answers.append(reply.text)
        return answers


HARD = [q for q in QUESTIONS if difficulty(q) == 2][:8]


def test_the_same_seed_gives_the_same_answers_over_http():
    runs = []
    for seed in (7, 7, 8):
        with LocalServer(seed=seed, **FAST) as server:
            runs.append(ask_all(server.demo("atomemo", "sampler"), HARD, 3))
    same, again, other = runs
    assert same == again and HEDGE in same and len(set(same)) > 1
    assert other != same  # seeds 7 and 8 draw apart (fixed: 24 hard asks each)


def test_serve_takes_a_seed():
    proc = subprocess.Popen([sys.executable, "-m", "atomemo_notebook", "serve", "--db", ":memory:", "--seed", "7",
                             "--test-mode"],  # test mode: the asks set a fast pace
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        app = next(a for a in info["apps"] if a["name"] == "Sampling Assistant")
        served = ask_all({"api_key": info["api_key"], "base_url": info["base_url"], "app_id": app["app_id"],
                          "trigger_id": app["trigger_id"]}, HARD, 2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    with LocalServer(seed=7, **FAST) as server:
        assert served == ask_all(server.demo("atomemo", "sampler"), HARD, 2)
