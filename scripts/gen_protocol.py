"""Write js/src/protocol.ts from atomemo_notebook/views/_widget_protocol.py, the one declaration of the
widget protocol. `--check` fails (exit 1) when the committed file differs: CI runs that.

    python scripts/gen_protocol.py          # regenerate
    python scripts/gen_protocol.py --check  # drift check
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union

from typing_extensions import get_args, get_origin, get_type_hints, is_typeddict  # noqa: UP035  # 3.10

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atomemo_notebook.views import _widget_protocol as protocol  # noqa: E402

TARGET = ROOT / "js" / "src" / "protocol.ts"
ALIASES = {"Status": protocol.Status}


def ts(hint: Any) -> str:
    for name, alias in ALIASES.items():
        if hint == alias:
            return name
    origin = get_origin(hint)
    if hint is Any:
        return "unknown"
    if hint is None or hint is type(None):
        return "null"
    if hint is str:
        return "string"
    if hint in (int, float):
        return "number"
    if hint is bool:
        return "boolean"
    if origin is Literal:
        return " | ".join(f'"{v}"' if isinstance(v, str) else str(v).lower() for v in get_args(hint))
    if origin in (Union, types.UnionType):
        return " | ".join(ts(a) for a in get_args(hint))
    if origin is list:
        inner = ts(get_args(hint)[0])
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if origin is tuple:
        return "[" + ", ".join(ts(a) for a in get_args(hint)) + "]"
    if origin is dict:
        return f"Record<string, {ts(get_args(hint)[1])}>"
    if is_typeddict(hint):
        return str(hint.__name__)
    raise TypeError(f"no TypeScript for {hint!r}")


def field_docs(cls: type) -> dict[str, str]:
    """A field's docstring: the string statement right after its annotation."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) \
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[statement.target.id] = " ".join(str(following.value.value).split())
    return docs


def typed_dict(cls: Any) -> str:
    hints = get_type_hints(cls)
    docs = field_docs(cls)
    lines = []
    if cls.__doc__:
        lines.append(f"/** {' '.join(cls.__doc__.split())} */")
    lines.append(f"export type {cls.__name__} = {{")
    for name, hint in hints.items():
        if name in docs:
            lines.append(f"  /** {docs[name]} */")
        optional = "" if name in cls.__required_keys__ else "?"
        lines.append(f"  {name}{optional}: {ts(hint)};")
    lines.append("};")
    return "\n".join(lines)


def render() -> str:
    out = [
        "// GENERATED from atomemo_notebook/views/_widget_protocol.py by scripts/gen_protocol.py;",
        "// do not edit.",
        "// CI checks it with `python scripts/gen_protocol.py --check`.",
        "",
        f"export const PROTOCOL_VERSION = {protocol.PROTOCOL_VERSION};",
        "",
        "export type Status = " + " | ".join(f'"{v}"' for v in get_args(protocol.Status)) + ";",
        "",
    ]
    for value in vars(protocol).values():
        if is_typeddict(value) and value.__module__ == protocol.__name__:
            out += [typed_dict(value), ""]
    out.append("/** Every synced trait of ChatWidget: the anywidget model. */")
    out.append("export type Model = {")
    out += [f"  {name}: {ts(hint)};" for name, hint in protocol.TRAITS.items()]
    out += ["};", "", "/** Every synced trait of EvalWidget (the results table of evaluate()). */",
            "export type EvalModel = {"]
    out += [f"  {name}: {ts(hint)};" for name, hint in protocol.EVAL_TRAITS.items()]
    out += ["};", "", "/** Every command the browser may send, with its arguments and its result. */",
            "export type Commands = {"]
    out += [f"  {name}: {{ args: {ts(args)}; result: {ts(result)} }};"
            for name, (args, result) in protocol.COMMANDS.items()]
    out += ["};", "", "export type CommandName = keyof Commands;", ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail if js/src/protocol.ts is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/gen_protocol.py", file=sys.stderr)
            return 1
        print(f"{TARGET.relative_to(ROOT)} matches atomemo_notebook/views/_widget_protocol.py")
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
