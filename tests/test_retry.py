"""The retry policy: the server's hints when sane (seconds, milliseconds, HTTP dates), else a
jittered exponential backoff; never a bare ValueError from a header."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomemo_notebook.transport._retry import MAX_BACKOFF, MAX_RETRY_AFTER, backoff_delay, retry_after


def test_backoff_doubles_to_the_cap_with_up_to_a_quarter_of_jitter():
    top = [backoff_delay(i, rand=lambda: 0.0) for i in range(1, 7)]
    assert top == [0.5, 1, 2, 4, 8, 8]
    low = [backoff_delay(i, rand=lambda: 1.0) for i in range(1, 7)]
    assert low == [0.375, 0.75, 1.5, 3, 6, 6]
    assert len({backoff_delay(3) for _ in range(50)}) > 1  # real jitter, not a constant


def test_a_sane_hint_wins_an_insane_one_is_ignored():
    assert backoff_delay(1, 3.0) == 3.0
    assert backoff_delay(1, 0.0) == 0.0
    assert backoff_delay(1, 600.0, rand=lambda: 0.0) == 0.5  # over a minute: not believed
    assert backoff_delay(1, -5.0, rand=lambda: 0.0) == 0.5


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": " 2.5 "}, 2.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"retry-after-ms": "NaN", "retry-after": "4"}, 4.0),
    ({"retry-after": "NaN"}, None),
    ({"retry-after": "inf"}, None),
    ({"retry-after": "-inf"}, None),
    ({"retry-after": "soon"}, None),
    ({"retry-after": ""}, None),
    ({}, None),
])
def test_retry_after_header_forms(headers, expected):
    assert retry_after(headers) == expected


def test_retry_after_as_an_http_date():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after({"retry-after": date}, now=lambda: now) == pytest.approx(7.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after({"retry-after": past}, now=lambda: now) == pytest.approx(-30.0)
    assert backoff_delay(1, retry_after({"retry-after": past}, now=lambda: now), rand=lambda: 0) == 0.5


@settings(max_examples=400, deadline=None)
@given(value=st.text(max_size=40), ms=st.one_of(st.none(), st.text(max_size=20)),
       attempt=st.integers(1, 50))
def test_fuzz_any_header_gives_a_finite_bounded_delay(value, ms, attempt):
    headers = {"retry-after": value} | ({} if ms is None else {"retry-after-ms": ms})
    delay = backoff_delay(attempt, retry_after(headers))
    assert 0.0 <= delay <= max(MAX_BACKOFF, MAX_RETRY_AFTER)
