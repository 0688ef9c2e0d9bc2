"""The evaluation data set shipped with the package, for the embedded server's demo apps."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["demo_dataset"]


def demo_dataset(app: str | None = None) -> list[dict[str, Any]]:
    """Rows `{app, question, expected[, conversation]}`; `app` keeps only that demo app's."""
    text = resources.files(__package__).joinpath("demo_questions.json").read_text(encoding="utf-8")
    rows: list[dict[str, Any]] = json.loads(text)["rows"]
    if app is not None:
        known = sorted({r["app"] for r in rows})
        if app not in known:
            raise ValueError(f"no demo questions for {app!r}; there are: {', '.join(known)}")
        rows = [r for r in rows if r["app"] == app]
    return rows
