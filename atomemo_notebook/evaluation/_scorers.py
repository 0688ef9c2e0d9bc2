"""Scorers: plain callables `(row, reply) -> float | bool | dict | None`. A few are built in;
any exception in one is recorded in its row, never raised."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..model.reply import Reply

__all__ = ["Scorer", "contains", "exact", "latency_under", "regex", "score_row", "scorer_name"]

Scorer = Callable[[dict[str, Any], Reply], Any]
MAX_SCORE_ERROR = 300


def _expected(row: dict[str, Any]) -> Any:
    return row.get("expected")


def exact(row: dict[str, Any], reply: Reply) -> bool | None:
    """The answer is the expected text (ignoring surrounding white space)."""
    want = _expected(row)
    return None if want is None else reply.text.strip() == str(want).strip()


def contains(row: dict[str, Any], reply: Reply) -> bool | None:
    """Every expected keyword is in the answer, ignoring case. `expected`: a string, a list
    of strings, or a string of keywords separated by `|`."""
    want = _expected(row)
    if want is None:
        return None
    words = [str(w) for w in want] if isinstance(want, list | tuple) else str(want).split("|")
    text = reply.text.lower()
    return all(w.strip().lower() in text for w in words if w.strip())


def regex(pattern: str | None = None, flags: int = re.IGNORECASE) -> Scorer:
    """A scorer: the answer matches `pattern` (or the row's expected value as a pattern)."""
    fixed = re.compile(pattern, flags) if pattern is not None else None

    def matches(row: dict[str, Any], reply: Reply) -> bool | None:
        compiled = fixed
        if compiled is None:
            want = _expected(row)
            if want is None:
                return None
            compiled = re.compile(str(want), flags)
        return compiled.search(reply.text) is not None

    matches.__name__ = "regex"
    return matches


def latency_under(seconds: float) -> Scorer:
    """A scorer: the whole answer took at most `seconds`."""

    def fast(row: dict[str, Any], reply: Reply) -> bool | None:
        total = reply.total_time
        return None if total is None else total <= seconds

    fast.__name__ = f"latency_under_{seconds:g}s"
    return fast


def scorer_name(scorer: Scorer) -> str:
    return str(getattr(scorer, "__name__", None) or type(scorer).__name__)


def score_row(scorers: Sequence[Scorer], row: dict[str, Any], reply: Reply) -> tuple[dict[str, Any], list[str]]:
    """Each scorer's result as `score_<name>` columns (a dict result: `score_<name>_<key>`),
    and the errors of those that raised."""
    scores: dict[str, Any] = {}
    errors: list[str] = []
    for scorer in scorers:
        name = scorer_name(scorer)
        try:
            value = scorer(row, reply)
        except Exception as exc:  # a scorer's bug is that row's problem, never the run's
            errors.append(f"{name}: {type(exc).__name__}: {exc}"[:MAX_SCORE_ERROR])
            scores[f"score_{name}"] = None
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                scores[f"score_{name}_{key}"] = item
        else:
            scores[f"score_{name}"] = value
    return scores, errors
