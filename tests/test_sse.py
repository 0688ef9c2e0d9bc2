"""SSE framing on byte chunks cut at every awkward place (the WHATWG and web-platform-tests
eventsource cases), with its bounds, and a fuzz test that any split decodes the same."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook import LimitExceededError
from atomemo_notebook.protocol._sse import FrameDecoder
from atomemo_notebook.protocol._wire import MalformedFrame
from atomemo_notebook.protocol.atomemo.events import parse_frame


def frames(chunks: list[bytes], charset: str = "utf-8", **limits: int) -> list[tuple[str, str, str]]:
    response = httpx.Response(200, headers={"content-type": f"text/event-stream; charset={charset}"},
                              content=iter(chunks))
    decoder = FrameDecoder(**limits)
    out = []
    for chunk in response.iter_bytes():
        out += [(s.event, s.data, s.id) for s in decoder.feed(chunk)]
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


def test_every_ended_block_is_counted_as_life_even_without_data():
    # Dify's keep-alive is a bare `event: ping`: no event is dispatched, but the stream lives.
    decoder = FrameDecoder()
    assert decoder.feed(b"event: ping\n\n") == [] and decoder.blocks == 1
    assert decoder.feed(b": comment\n\n\n\n") == [] and decoder.blocks == 2  # blank lines alone are not blocks
    assert len(decoder.feed(b"data: x\n\nevent: ping\n")) == 1 and decoder.blocks == 3
    assert decoder.feed(b"\n") == [] and decoder.blocks == 4


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


@pytest.mark.parametrize("charset", ["windows-1252", "latin-1", "utf-16", "nonsense"])
def test_the_stream_is_utf8_whatever_charset_the_header_declares(charset: str):
    body = "data: héllo — 世界\n\n".encode()
    assert frames([body], charset=charset) == [("message", "héllo — 世界", "")]
    assert frames(one_byte(body), charset=charset) == [("message", "héllo — 世界", "")]


def test_invalid_utf8_becomes_replacement_characters_not_an_error():
    assert frames([b"data: a\xff\xfeb\n\n"]) == [("message", "a\ufffd\ufffdb", "")]


@pytest.mark.parametrize("body", [b"data:x\r\r", b"data:x\n\n", b"data:x\r\n\r\n", b"data:x\n\r"])
def test_a_stream_ending_with_a_blank_line_keeps_its_last_event(body: bytes):
    # wpt eventsource/format-newlines: a final CR ends its line even with nothing after it.
    assert frames([body]) == [("message", "x", "")]
    assert frames(one_byte(body)) == [("message", "x", "")]


def test_wpt_mixed_newlines():
    body = b"data:test\r\ndata\ndata:test\r\n\r\n"
    assert frames([body]) == [("message", "test\n\ntest", "")]


def test_wpt_field_event_with_empty_value_is_message():
    assert frames([b"event:\ndata:x\n\n"]) == [("message", "x", "")]
    assert frames([b"event: custom\ndata:x\n\ndata:y\n\n"]) == [("custom", "x", ""), ("message", "y", "")]


@pytest.mark.parametrize(("line", "expected"), [
    (b"retry: 1000", 1000), (b"retry:1000", 1000), (b"retry: 1e3", None), (b"retry: -1", None),
    (b"retry: 10 ", None), (b"retry: \xd9\xa1\xd9\xa2", None), (b"retry:", None), (b"retry: \xef\xbc\x91", None),
])
def test_retry_accepts_only_ascii_digits(line: bytes, expected: int | None):
    decoder = FrameDecoder()
    decoder.feed(line + b"\ndata: x\n\n")
    assert decoder.retry == expected


def test_id_with_nul_is_ignored():
    assert frames([b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"]) == [("message", "a", "1"), ("message", "b", "1")]


def test_a_line_without_a_break_fails_at_the_limit_and_holds_no_more():
    decoder = FrameDecoder(max_line=1000)
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(LimitExceededError) as info:
        decoder.feed(b"x" * 200)
    assert info.value.limit_name == "max_line" and "1,000" in str(info.value)
    assert decoder._partial == ""


def test_a_line_within_the_limit_passes():
    assert frames([b"data: " + b"x" * 990 + b"\n\n"], max_line=1000) == [("message", "x" * 990, "")]


def test_an_event_of_many_lines_fails_at_the_event_limit():
    body = b"".join(b"data: " + b"y" * 50 + b"\n" for _ in range(100)) + b"\n"
    with pytest.raises(LimitExceededError) as info:
        frames([body], max_event=1000)
    assert info.value.limit_name == "max_event"
    assert len(frames([body], max_event=10_000)[0][1]) == 100 * 51 - 1


def whatwg(text: str) -> list[tuple[str, str, str]]:
    """The spec's steps over the whole stream at once (no chunks, no bounds): the reference the
    decoder's frames are checked against."""
    text = text[1:] if text.startswith("\ufeff") else text
    out, event, data, last_id = [], "", None, ""
    for line in re.split(r"\r\n|\r|\n", text)[:-1]:  # what follows the last break is no line yet
        if not line:
            if data is not None:
                out.append((event or "message", "\n".join(data), last_id))
            event, data = "", None
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data = [*(data or []), value]
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
    return out


FIELD = st.sampled_from(["data", "event", "id", "retry", "", "dat", ":comment"])
# A blank line as often as a field: it is what dispatches an event, and a stream of fields
# without one checks little.
LINE = st.one_of(st.just(("", "", "")), st.tuples(FIELD, st.sampled_from([":", ": ", ""]), st.text(max_size=12)))
BREAK = st.sampled_from(["\n", "\r", "\r\n"])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(LINE, BREAK), max_size=30), cuts=st.lists(st.integers(0, 400), max_size=12),
       bom=st.booleans())
def test_fuzz_any_split_decodes_like_the_whole(lines, cuts, bom):
    text = "".join(f"{name}{colon}{value}{brk}" for (name, colon, value), brk in lines)
    body = (("\ufeff" if bom else "") + text).encode("utf-8", errors="surrogatepass")
    whole = frames([body])
    # Any split decodes like the whole, and the whole as the spec says (a decoder that dropped
    # everything would pass the first check alone).
    assert whole == whatwg(body.decode("utf-8", errors="replace"))
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert frames(pieces) == whole
    for _, data, _ in whole:
        assert "\r" not in data  # every CR was a line break
