"""Answering a form a run waits on (neutral: any system's InputRequested): the answer checked
against the form before anything is sent."""

from __future__ import annotations

from typing import Any

from ._neutral import InputRequested

__all__ = ["MAX_VALUE", "check_answer"]

MAX_VALUE = 100_000  # characters of one answered input


def check_answer(form: InputRequested, action: str, inputs: dict[str, Any]) -> dict[str, str]:
    """The inputs to send for `action`, or ValueError saying what is wrong (nothing is sent)."""
    if form.refused:
        raise ValueError(form.refused)
    ids = [a["id"] for a in form.actions]
    if action not in ids:
        raise ValueError(f"the form {form.node_title!r} has no action {action!r}; its actions are {ids}")
    names = {f["name"]: f for f in form.fields}
    unknown = sorted(set(inputs) - set(names))
    if unknown:
        raise ValueError(f"the form {form.node_title!r} has no input {unknown[0]!r}; its inputs are {sorted(names)}")
    out: dict[str, str] = {}
    for name, field in names.items():
        value = inputs.get(name, field["default"])
        if value is None:
            value = ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"input {name!r} must be text or a number, got {type(value).__name__}")
        text = str(value)
        if len(text) > MAX_VALUE:
            raise ValueError(f"input {name!r} is {len(text):,} characters; at most {MAX_VALUE:,} are sent")
        out[name] = text
    return out
