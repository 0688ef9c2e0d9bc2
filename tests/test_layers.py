"""The spine, checked: protocol -> transport -> model -> session -> views -> evaluation (batch
runs on top of the chat model, with their own table view), each importing only from its left;
the server beside, sharing only the protocol. One edge is allowed by name: the session's
runtime starts the embedded server for the offline demo."""

from __future__ import annotations

import ast
from pathlib import Path

import atomemo_notebook

PACKAGE = Path(atomemo_notebook.__file__).parent
LAYERS = {"protocol": 0, "transport": 1, "model": 2, "session": 3, "views": 4, "evaluation": 5}
ALLOWED = {("atomemo_notebook.session._runtime", "server")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, text: str | None = None) -> list[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(target)
            found.extend(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [t for t in found if t.startswith("atomemo_notebook.")]


def area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*LAYERS, "server") else None


def violations(path: Path, text: str | None = None) -> list[str]:
    source = module_name(path)
    mine = area(source)
    if mine is None:
        return []  # the package's front door (__init__, cli) may import anything
    problems = []
    for target in imports(path, text):
        theirs = area(target)
        if theirs is None or theirs == mine or (source, theirs) in ALLOWED:
            continue
        if mine == "server" and theirs != "protocol":
            problems.append(f"{source} -> {target} (the server shares only the protocol)")
        elif theirs == "server":
            problems.append(f"{source} -> {target} (only session._runtime starts the server)")
        elif mine != "server" and LAYERS[theirs] > LAYERS[mine]:
            problems.append(f"{source} -> {target} ({mine} imports rightward, from {theirs})")
    return problems


def test_every_module_imports_only_leftward():
    problems = [p for path in sorted(PACKAGE.rglob("*.py")) for p in violations(path)]
    assert problems == []


def test_the_checker_catches_each_kind_of_wrong_import():
    client = PACKAGE / "transport" / "_client.py"
    assert violations(client, "from ..model.chat import Chat") == [
        "atomemo_notebook.transport._client -> atomemo_notebook.model.chat (transport imports rightward, from model)",
        "atomemo_notebook.transport._client -> atomemo_notebook.model.chat.Chat (transport imports rightward, from model)"]
    widget = PACKAGE / "views" / "_widget.py"
    assert violations(widget, "from ..server import DEMO_APPS")
    store = PACKAGE / "server" / "_store.py"
    assert violations(store, "from ..model.reply import Reply")
    assert violations(store, "from ..protocol.log import get_logger") == []


def test_the_layers_are_visible_in_the_tree():
    for layer in (*LAYERS, "server"):
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
    assert not [p.name for p in PACKAGE.glob("_*.py") if p.name not in ("__init__.py", "__main__.py",
                                                                          "_version.py")]
