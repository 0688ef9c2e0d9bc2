"""SSE framing on byte chunks cut at every awkward place, through httpx's own text decoding."""

from __future__ import annotations

import json

import httpx
import pytest

from atomemo_notebook._events import MalformedFrame, parse_frame
from atomemo_notebook._sse import FrameDecoder


def frames(chunks: list[bytes]) -> list[tuple[str, str, str]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream; charset=utf-8"},
                              content=iter(chunks))
    decoder = FrameDecoder()
    out = []
    for text in response.iter_text():
        out += [(s.event, s.data, s.id) for s in decoder.feed(text)]
    out += [(s.event, s.data, s.id) for s in decoder.flush()]
    return out


def every_split(body: bytes) -> list[list[bytes]]:
    return [[body[:i], body[i:]] for i in range(1, len(body))]


def one_byte(body: bytes) -> list[bytes]:
    return [body[i:i + 1] for i in range(len(body))]


def test_whatwg_example_with_comments_and_multiline_data():
    body = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"
    assert frames([body]) == [
        ("message", "first event", "1"),
        ("message", "second event", ""),
        ("message", " third event", ""),
    ]


def test_multiline_data_joins_with_lf():
    body = b"data: YHOO\ndata: +2\ndata: 10\n\n"
    assert frames([body]) == [("message", "YHOO\n+2\n10", "")]


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending_at_every_split(ending: bytes):
    body = ending.join([b"data: a", b"", b"data: b", b"", b""])
    expected = [("message", "a", ""), ("message", "b", "")]
    assert frames([body]) == expected
    for chunks in every_split(body):
        assert frames(chunks) == expected, chunks
    assert frames(one_byte(body)) == expected


def test_crlf_split_between_cr_and_lf_does_not_make_an_extra_blank_line():
    # A CR at a chunk's end followed by LF must count as one line ending, not two.
    body = b"data: a\r\ndata: b\r\n\r\n"
    for chunks in every_split(body):
        assert frames(chunks) == [("message", "a\nb", "")], chunks


def test_utf8_character_split_across_chunks():
    payload = json.dumps({"event": "chat_message", "data": {"text": "héllo 世界 🚀"}},
                         ensure_ascii=False)
    body = f"data: {payload}\n\n".encode()
    for chunks in every_split(body):
        (event,) = frames(chunks)
        assert parse_frame(event[1]).text == "héllo 世界 🚀"  # type: ignore[attr-defined]


def test_line_separators_inside_json_are_not_line_endings():
    payload = json.dumps({"event": "chat_message", "data": {"text": "a\u2028b\u2029c\x85d"}},
                         ensure_ascii=False)
    body = f"data: {payload}\n\n".encode()
    for chunks in [[body], one_byte(body)]:
        (event,) = frames(chunks)
        assert parse_frame(event[1]).text == "a\u2028b\u2029c\x85d"  # type: ignore[attr-defined]


def test_leading_bom_is_skipped_and_the_first_event_kept():
    body = "\ufeffdata: first\n\ndata: second\n\n".encode()
    assert frames([body]) == [("message", "first", ""), ("message", "second", "")]
    assert frames(one_byte(body)) == [("message", "first", ""), ("message", "second", "")]


def test_only_one_bom_is_skipped():
    body = "\ufeff\ufeffdata: x\n\ndata: y\n\n".encode()
    assert frames([body]) == [("message", "y", "")]


def test_block_without_data_is_not_dispatched():
    body = b"event: ping\n\nid: 7\n\nretry: 10\n\ndata: real\n\n"
    assert frames([body]) == [("message", "real", "7")]


def test_empty_data_line_is_dispatched_with_empty_data():
    assert frames([b"data:\n\n"]) == [("message", "", "")]
    assert frames([b"data\n\n"]) == [("message", "", "")]


def test_field_named_like_data_is_not_data():
    assert frames([b"database: x\n\n"]) == []


def test_unterminated_last_block_is_dropped():
    assert frames([b"data: done\n\ndata: half"]) == [("message", "done", "")]


def test_eight_mib_single_line():
    text = "x" * (8 * 1024 * 1024)
    body = f'data: {{"event": "chat_message", "data": {{"text": "{text}"}}}}\n\n'.encode()
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    (event,) = frames(chunks)
    assert len(parse_frame(event[1]).text) == len(text)  # type: ignore[attr-defined]


def test_malformed_payload_becomes_a_malformed_frame_not_an_exception():
    for payload in ["{oops", "[1, 2]", '"text"', '{"data": {}}', '{"event": 3}']:
        event = parse_frame(payload)
        assert isinstance(event, MalformedFrame)
        assert event.raw == payload
        assert event.error


def test_unknown_event_name_is_a_generic_event():
    event = parse_frame('{"event": "brand_new", "data": {"x": 1}}')
    assert type(event).__name__ == "Event"
    assert (event.event, event.data) == ("brand_new", {"x": 1})
