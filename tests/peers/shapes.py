"""What the contract tests compare of two answers: the JSON kind of each value, not the value."""

from __future__ import annotations

from typing import Any


def kind(value: Any) -> str:
    """null, bool, number, string, list or object: the JSON type of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]
