"""What a reply holds is bounded by its share (Limits.reply_memory), whatever the server
sends; what parsing takes by Limits.json_values; closing a chat lets go of its replies.

Each system is asked over real HTTP (and a real WebSocket) on loopback by a server that
answers with hostile JSON (tests/hostile_server.py): many small objects, arrays, numbers,
distinct keys and strings, one huge string, nesting past any recursion limit, and a mix.
The shares are set small, so every class of input is covered in a few seconds; sizes are
measured (an iterative sys.getsizeof walk, tracemalloc), never times."""

from __future__ import annotations

import gc
import json
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import atomemo_notebook as an
from atomemo_notebook.model.reply import Reply
from atomemo_notebook.protocol._bounded import CUT, Keeper, check_values, count_values, deep_size, is_cut
from atomemo_notebook.protocol._limits import Limits

from .hostile_server import ANSWER, SHAPES, SYSTEMS, HostileServer, shape

SHARE = 256 * 1024  # the reply's share in these tests
PAYLOAD = 512 * 1024  # characters of each hostile value: twice the share, ~50x it once parsed
MULTIPLE = 4  # what a reply holds stays within this multiple of its share (plus its answer)
FIXED = 256 * 1024  # the reply's own objects: spans, records, the adapter, the clock...


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


def ask(srv: HostileServer, system: str, limits: Limits) -> tuple[an.Chat, Reply]:
    chat = srv.chat(system, limits)
    try:
        return chat, chat.ask("hello")
    except BaseException:
        chat.close()
        raise


def values(root: Any) -> int:
    """The values a parsed JSON document holds (iterative)."""
    count, stack = 0, [root]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def cut_anywhere(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if is_cut(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# -- a reply holds at most a small multiple of its share, for every system and shape ------------

PARSED_SHAPES = [s for s in SHAPES if s != "deep"]


@pytest.mark.parametrize("kind", PARSED_SHAPES)
@pytest.mark.parametrize("system", SYSTEMS)
def test_a_reply_holds_a_small_multiple_of_its_share_whatever_the_server_sends(hostile, system, kind):
    hostile.payload, hostile.count = shape(kind, PAYLOAD), 2
    chat, reply = ask(hostile, system, Limits(reply_memory=SHARE))
    try:
        assert reply.status == "succeeded", (reply.error, reply.anomalies)
        assert reply.text == ANSWER  # the answer is whole
        held = deep_size(reply)
        assert held <= MULTIPLE * SHARE + FIXED + 2 * len(reply.text), (system, kind, held)
        # What was left out is marked where it was cut, counted, and said.
        assert reply.memory["limit"] == SHARE and reply.memory["cut_values"] > 0
        assert any("Limits.reply_memory" in a for a in reply.anomalies), reply.anomalies
        kept = [record.event.data for record in reply.events] + [span.json_output for span in reply.nodes]
        assert any(cut_anywhere(value) for value in kept)
        # and every value kept is still JSON: records and the event log write it as it is
        json.dumps(kept)
        an.Chat.timeline_records(chat)
    finally:
        chat.close()


@pytest.mark.parametrize("system", SYSTEMS)
def test_small_outputs_are_kept_whole_and_nothing_is_marked_cut(hostile, system):
    hostile.payload, hostile.count = json.dumps({"rows": [{"id": i, "name": f"row {i}"} for i in range(50)]}), 3
    chat, reply = ask(hostile, system, Limits(reply_memory=SHARE))
    try:
        assert reply.status == "succeeded" and reply.text == ANSWER
        assert reply.memory["cut_values"] == 0
        assert not any("Limits.reply_memory" in a for a in reply.anomalies)
        outputs = [span.json_output for span in reply.nodes if span.json_output is not None]
        assert outputs and all(o == json.loads(hostile.payload) for o in outputs[:1])
    finally:
        chat.close()


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_huge_answer_is_kept_whole_beside_a_small_share(hostile, system):
    hostile.payload, hostile.count = shape("objects", PAYLOAD), 1
    hostile.answer = "word " * 100_000  # 500 KB of answer, twice the share
    try:
        chat, reply = ask(hostile, system, Limits(reply_memory=SHARE // 4))
        try:
            assert reply.text == hostile.answer
            assert deep_size(reply) <= MULTIPLE * SHARE // 4 + FIXED + 3 * len(reply.text)
        finally:
            chat.close()
    finally:
        hostile.answer = ANSWER


# -- two asks hold two shares; close lets go of both ----------------------------------------------

@pytest.mark.parametrize("system", SYSTEMS)
def test_close_lets_go_of_every_reply_and_what_it_kept(hostile, system):
    hostile.payload, hostile.count = shape("string", PAYLOAD), 1  # kept whole: a share of 8 MiB
    chat = hostile.chat(system, Limits())
    chat.ask("warm up")  # connections, caches: what the first ask sets up stays
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refs = [weakref.ref(chat.ask("one")), weakref.ref(chat.ask("two"))]
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        assert 2 * PAYLOAD <= held <= 2 * (4 * PAYLOAD + FIXED), held
        assert chat.history_records()[-1]["answer"] == ANSWER
        chat.close()
        gc.collect()
        assert [r() for r in refs] == [None, None]  # the chat is alive; its replies are gone
        assert chat.history_records()[-1]["answer"] == ANSWER  # the tree keeps the answers
        assert tracemalloc.get_traced_memory()[0] - before <= held // 4
    finally:
        tracemalloc.stop()
        chat.close()


# -- parsing: a text past Limits.json_values is never parsed -------------------------------------

@pytest.mark.parametrize("kind", ["objects", "arrays", "numbers", "wide", "strings", "mixed"])
@pytest.mark.parametrize("system", SYSTEMS)
def test_a_text_past_json_values_is_refused_before_parsing_naming_the_limit(hostile, system, kind):
    hostile.payload, hostile.count = shape(kind, PAYLOAD), 1
    limits = Limits(json_values=20_000)
    gc.collect()
    tracemalloc.start()
    try:
        if system == "odyssey":  # one answer: the ask fails, naming the limit
            chat = hostile.chat(system, limits)
            try:
                with pytest.raises(an.LimitExceededError) as caught:
                    chat.ask("hello")
                assert caught.value.limit_name == "json_values"
                assert "Limits.json_values=20,000" in str(caught.value)
                reply = chat.last_reply
            finally:
                chat.close()
        else:  # a stream: the event is kept as a malformed frame; the stream and the answer go on
            chat, reply = ask(hostile, system, limits)
            chat.close()
            assert reply is not None and reply.text == ANSWER
            assert any("Limits.json_values=20,000" in a for a in reply.anomalies), reply.anomalies
            refused = [r.event.data for r in reply.events if r.event.event == "_malformed_frame"]
            assert refused and all(len(d["raw"]) <= 2000 and d["size"] > PAYLOAD // 2 for d in refused)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Parsed, the payload would make ~50x its size in objects; refused, the peak is its text.
    assert peak < 20 * PAYLOAD, peak
    assert reply is not None and deep_size(reply) < 4 * FIXED  # nor is the body kept (not even by a traceback)


@pytest.mark.parametrize("system", SYSTEMS)
def test_json_nested_past_the_recursion_limit_is_refused_clearly(hostile, system):
    hostile.payload, hostile.count = shape("deep", 200_000), 1
    if system == "odyssey":
        chat = hostile.chat(system, Limits())
        try:
            with pytest.raises(an.APIResponseValidationError, match="RecursionError"):
                chat.ask("hello")
        finally:
            chat.close()
        return
    chat, reply = ask(hostile, system, Limits())
    chat.close()
    assert reply.text == ANSWER
    assert any("nested too deep" in a for a in reply.anomalies), reply.anomalies


# -- the bounds themselves ----------------------------------------------------------------------

def _json() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3000)
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=40) |
                        st.dictionaries(st.text(max_size=300), kids, max_size=40), max_leaves=400)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_json(), budget=st.integers(0, 64 * 1024), wrap=st.integers(0, 60))
def test_keep_bounds_any_json_shape(value, budget, wrap):
    for _ in range(wrap):  # nested past MAX_DEPTH sometimes
        value = [value]
    keeper = Keeper(budget)
    kept = keeper.keep(value)
    text = json.dumps(kept)  # still JSON, and shallow enough to write
    assert deep_size(kept) <= max(budget, 4096) + 64 * 1024 or kept is value
    if kept is not value:
        assert json.loads(text) is not None or kept is None
    if keeper.cut_values == 0:
        assert kept == value  # nothing cut: the same value
    assert keeper.keep(value) is not None or value is None  # and again, with the share spent


def test_keep_walks_10000_deep_nesting_without_recursion():
    deep: Any = "bottom"
    for _ in range(10_000):
        deep = {"a": [deep]}
    keeper = Keeper(1 << 20)
    kept = keeper.keep(deep)
    json.dumps(kept)
    assert cut_anywhere(kept) and keeper.cut_values >= 1
    assert deep_size(kept) < 1 << 20
    assert deep_size(deep) > 10_000 * 100  # the walk that measures is iterative too


@settings(max_examples=200, deadline=None)
@given(value=_json(), indent=st.sampled_from([None, 0, 2]), as_bytes=st.booleans())
def test_count_values_never_undercounts(value, indent, as_bytes):
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    estimate = count_values(text.encode() if as_bytes else text)
    assert estimate >= values(json.loads(text))


@pytest.mark.parametrize("kind", SHAPES)
def test_count_values_is_exact_for_compact_hostile_shapes(kind):
    text = shape(kind, 30_000)
    if kind == "deep":
        assert count_values(text) == len(text) // 2
        return
    assert count_values(text) == values(json.loads(text))
    if values(json.loads(text)) > 10:
        with pytest.raises(an.LimitExceededError, match=r"Limits\.json_values=10\b"):
            check_values(text, 10)


def test_markers_say_what_was_left_out():
    keeper = Keeper(4096)
    rows = keeper.keep(list(range(100_000)))
    assert rows[:3] == [0, 1, 2] and rows[-1].startswith(CUT) and rows[-1].endswith(" more items]")
    assert keeper.cut_values == 100_000 - (len(rows) - 1)
    keeper = Keeper(4096)
    kept = keeper.keep({"text": "x" * 100_000, "after": 1})
    assert kept["text"].startswith("xxx") and kept["text"].endswith(" more characters]")
    assert kept[CUT.strip()] == f"{CUT}1 more keys]"
    assert keeper.cut_chars == 100_000 - kept["text"].index(CUT)
