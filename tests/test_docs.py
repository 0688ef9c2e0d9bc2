"""The documentation tells the truth about the code: every public name has a docstring the API
reference renders, the API reference covers every public name, every Python name the README and
docs/ show in code exists (with the keyword arguments they pass), and the site builds with
`mkdocs build --strict` (a broken link, anchor or reference fails)."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

import atomemo_notebook as package
import atomemo_notebook.server as server_package

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_FILES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

# Values have no __doc__ of their own (a tuple's __doc__ is tuple's): their docstring is the string
# after the assignment, which the reference build reads from the source and renders.
VALUES = {
    "__version__": "the version string",
    "EVENT_COLUMNS": "a tuple of column names, documented where it is assigned",
    "HISTORY_COLUMNS": "a tuple of column names, documented where it is assigned",
    "SOURCE_COLUMNS": "a tuple of column names, documented where it is assigned",
    "TIMELINE_COLUMNS": "a tuple of column names, documented where it is assigned",
}


def own_docstring(obj: Any) -> str | None:
    """A docstring written for `obj`: not inherited, and not the signature dataclasses make up."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if doc and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return None
        return doc
    return getattr(obj, "__doc__", None)


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in package.__all__:
        obj = getattr(package, name)
        if name in VALUES:
            assert not inspect.isclass(obj) and not callable(obj), f"{name} is not a value: give it a docstring"
            continue
        if not (own_docstring(obj) or "").strip():
            missing.append(name)
    assert not missing, f"public names without a docstring: {missing}"
    assert set(VALUES) <= set(package.__all__), "the exemption list names what is no longer public"
    assert (own_docstring(server_package.LocalServer) or "").strip()  # docs/api/server.md renders it


def test_the_api_reference_covers_every_public_name() -> None:
    shown = {m.group(1) for path in sorted((DOCS / "api").glob("*.md"))
             for m in re.finditer(r"^::: atomemo_notebook\.(\w+)\s*$", path.read_text(), re.M)}
    missing = sorted(set(package.__all__) - shown - {"__version__"})
    assert not missing, f"public names missing from docs/api/: {missing}"


# -- the names shown in code ----------------------------------------------------------------------

PUBLIC: dict[str, Any] = {name: getattr(package, name) for name in package.__all__}
PUBLIC.update({name: getattr(server_package, name) for name in server_package.__all__})
PUBLIC["atomemo_notebook"] = package
# Names out of __all__ that the API reference documents by their module (Atomemo's own events
# and models, a reply's parts): the docs may name them too.
for _path in sorted((DOCS / "api").glob("*.md")):
    for _module, _name in re.findall(r"^::: (atomemo_notebook(?:\.\w+)+)\.(\w+)\s*$", _path.read_text(), re.M):
        PUBLIC[_name] = getattr(importlib.import_module(_module), _name)
PUBLIC["AtomemoError"] = package.AtomemoError  # ChatAPIError's first name: importable, out of __all__
EVENT_TYPES = tuple(obj for obj in PUBLIC.values() if inspect.isclass(obj) and issubclass(obj, package.Event))
CLIENTS = (package.Client, package.AsyncClient, package.DifyClient, package.AsyncDifyClient, package.PipelitClient,
           package.AsyncPipelitClient, package.OdysseyClient, package.AsyncOdysseyClient)
# What the docs' variables stand for, by the names they use throughout (a snippet shows
# `reply.wait()` without the lines that made `reply`).
CONVENTIONAL: dict[str, tuple[type, ...]] = {
    "chat": (package.Chat, package.AsyncChat, package.ChatWidget),
    "widget": (package.ChatWidget,),
    "reply": (package.Reply,),
    "client": CLIENTS,
    "server": (server_package.LocalServer,),
    "stream": (package.EventStream, package.AsyncEventStream),
    "event": EVENT_TYPES,
    "results": (package.EvalResults,),
    "ref": (package.FileRef,),
}

Value = tuple[str, Any]  # ("obj", an object) or ("inst", a tuple of the classes it may be)


@functools.cache
def instance_members(cls: type) -> set[str]:
    """Attributes an instance has: the class's, its dataclass fields, its annotations, and
    what any method of the package's classes assigns to `self`."""
    names = set(dir(cls))
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls)}
    for klass in cls.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
        if not klass.__module__.startswith("atomemo_notebook"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                names.add(node.attr)
    return names


def returns(func: Any) -> Value | None:
    """What a package function or method returns, when its annotation names a public class."""
    try:
        annotation = inspect.signature(func).return_annotation
    except (TypeError, ValueError):
        return None
    found = PUBLIC.get(annotation) if isinstance(annotation, str) else annotation
    return ("inst", (found,)) if inspect.isclass(found) else None


def accepts(func: Any, keyword: str) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True  # no signature to hold the docs to
    return any(p.kind is p.VAR_KEYWORD or (p.name == keyword and p.kind is not p.POSITIONAL_ONLY) for p in params)


class NameChecker:
    """Resolves the names in one Markdown file's code against the package; collects those that do
    not exist. In fenced python blocks every name must be defined (imported, assigned earlier in
    the file, a builtin or a conventional variable); in inline code only what names the package
    is checked: a bare call `name(...)`, a CamelCase name, and attributes of known objects."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.missing: list[str] = []
        self.names: dict[str, Value | None] = {}
        self.inline = False

    def report(self, what: str) -> None:
        self.missing.append(f"{self.where}: {what}")

    # -- resolving ---------------------------------------------------------------------------
    def resolve(self, node: ast.AST) -> Value | None:
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        self.visit(node)
        return None

    def visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Name, ast.Attribute, ast.Call)):
                self.resolve(child)
            else:
                self.visit(child)

    def name(self, name: str) -> Value | None:
        if name in self.names:
            return self.names[name]
        if name in CONVENTIONAL:
            return ("inst", CONVENTIONAL[name])
        if self.inline and name in PUBLIC:
            return ("obj", PUBLIC[name])
        if not self.inline and not hasattr(builtins, name):
            self.report(f"{name} (not defined: import or assign it first)")
        return None

    def attribute(self, node: ast.Attribute) -> Value | None:
        base = self.resolve(node.value)
        if base is None:
            return None
        kind, value = base
        label = ast.unparse(node)
        if kind == "inst":
            if not any(node.attr in instance_members(cls) for cls in value):
                self.report(f"{label} (no {' / '.join(c.__name__ for c in value)} has .{node.attr})")
            return None
        if isinstance(value, types.ModuleType):
            try:
                return ("obj", getattr(value, node.attr))
            except AttributeError:
                try:
                    return ("obj", importlib.import_module(f"{value.__name__}.{node.attr}"))
                except ImportError:
                    self.report(f"{label} (no such name in {value.__name__})")
                    return None
        if inspect.isclass(value) and value.__module__.startswith("atomemo_notebook"):
            if node.attr not in instance_members(value):
                self.report(f"{label} ({value.__name__} has no .{node.attr})")
                return None
            found = inspect.getattr_static(value, node.attr, None)
            return ("obj", getattr(value, node.attr)) if inspect.isclass(found) or callable(found) else None
        return None

    def call(self, node: ast.Call) -> Value | None:
        if self.inline and isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in self.names and name not in PUBLIC and not hasattr(builtins, name):
                self.report(f"{name}(...) (the package has no {name}; a method needs its object)")
        target = self.resolve(node.func)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            self.resolve(arg)
        keywords = [k.arg for k in node.keywords if k.arg is not None]
        label = ast.unparse(node.func)
        if target is not None and target[0] == "obj" and getattr(target[1], "__module__", "").startswith(
                "atomemo_notebook"):
            for keyword in keywords:
                if not accepts(target[1], keyword):
                    self.report(f"{label}({keyword}=...) (no such parameter)")
            return ("inst", (target[1],)) if inspect.isclass(target[1]) else returns(target[1])
        if isinstance(node.func, ast.Attribute):
            owner = self.resolve_quietly(node.func.value)
            if owner is not None and owner[0] == "inst":
                methods = [getattr(cls, node.func.attr) for cls in owner[1] if hasattr(cls, node.func.attr)]
                for keyword in keywords:
                    if methods and not any(accepts(m, keyword) for m in methods):
                        self.report(f"{label}({keyword}=...) (no such parameter)")
                results = {returns(m) for m in methods} - {None}
                return results.pop() if len(results) == 1 else None
        return None

    def resolve_quietly(self, node: ast.AST) -> Value | None:
        kept = list(self.missing)
        try:
            return self.resolve(node)
        finally:
            self.missing = kept

    # -- a fenced block: statements in order, each name defined before it is used ------------------
    def block(self, source: str) -> None:
        self.inline = False
        try:
            # Top-level await allowed: an async snippet shows `await chat.ask(...)` as a notebook runs it.
            tree = cast(ast.Module, compile(source, self.where, "exec",
                                            ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT))
        except SyntaxError as exc:
            self.report(f"a python block that does not parse: {exc.msg} at line {exc.lineno}")
            return
        for statement in tree.body:
            self.define(statement)
            self.visit(statement)
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                    statement.targets[0], ast.Name):
                name, value = statement.targets[0].id, self.resolve_quietly(statement.value)
                if value is None and name in CONVENTIONAL:
                    del self.names[name]  # unknown here: the name's usual meaning stands
                else:
                    self.names[name] = value

    def define(self, statement: ast.AST) -> None:
        """Every name the statement binds, before its uses are checked (a `with ... as server`
        binds server for what follows in the same statement)."""
        for node in ast.walk(statement):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.names[(alias.asname or alias.name).split(".")[0]] = self.imported(node, alias)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.names.setdefault(node.id, None)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.names[node.name] = None
            elif isinstance(node, ast.arg):
                self.names.setdefault(node.arg, None)
            elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                self.names[node.optional_vars.id] = self.resolve_quietly(node.context_expr)

    def imported(self, node: ast.Import | ast.ImportFrom, alias: ast.alias) -> Value | None:
        if isinstance(node, ast.Import):
            if not alias.name.startswith("atomemo_notebook"):
                return None
            return ("obj", importlib.import_module(alias.name.split(".")[0]))
        module = node.module or ""
        if not module.startswith("atomemo_notebook"):
            return None
        try:
            return ("obj", getattr(importlib.import_module(module), alias.name))
        except (ImportError, AttributeError):
            self.report(f"from {module} import {alias.name} (no such name)")
            return None

    # -- an inline code span --------------------------------------------------------------------
    def span(self, text: str) -> None:
        self.inline = True
        try:
            expression = ast.parse(text, mode="eval").body
        except SyntaxError:
            return  # a command, a path, a URL or a header: not Python
        if isinstance(expression, ast.Name):
            # A lone CamelCase name (two capitals at least) stands for a class; `Enter` is a key,
            # lowercase names are columns, fields and words.
            if re.fullmatch(r"(?=(?:[a-z0-9]*[A-Z]){2})[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*", expression.id) and expression.id not in PUBLIC \
                    and not hasattr(builtins, expression.id):
                self.report(f"{expression.id} (no such class in the package)")
        elif isinstance(expression, (ast.Attribute, ast.Call)):
            self.resolve(expression)


FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def missing_names(markdown: str, where: str) -> list[str]:
    checker = NameChecker(where)
    for fence in FENCE.finditer(markdown):
        if fence.group(1) in ("python", "py"):
            checker.block(fence.group(2))
    prose = FENCE.sub("", markdown)
    for span in INLINE.finditer(prose):
        checker.span(span.group(1))
    return checker.missing


def doc_sources() -> Iterator[tuple[str, str]]:
    for path in DOC_FILES:
        yield str(path.relative_to(ROOT)), path.read_text()


def test_every_name_the_docs_show_in_code_exists() -> None:
    missing = [m for where, text in doc_sources() for m in missing_names(text, where)]
    assert not missing, "names shown in the docs that the code does not have:\n" + "\n".join(missing)


def test_the_name_check_catches_wrong_names_and_passes_right_ones() -> None:
    # A wrong name of each kind, as a doc might get it wrong.
    wrong = textwrap.dedent('''
        A stream finished from history says so in `Reply.recovered`; `chat.history_dataframe()`
        gives the rows; `evaluate(..., rerun_failures=True)` asks again; `follow(message_id)`
        waits; `NoSuchWidget` draws it; `client.get_messages(..., until=3)`.

        ```python
        from atomemo_notebook import Chat, evaluate, no_such_function

        results = evaluate(chat, ["Hello"])
        results.summary_table()
        undefined_name.ask("x")
        ```
        ''')
    found = "\n".join(missing_names(wrong, "sample.md"))
    for expected in ["Reply.recovered", "chat.history_dataframe", "rerun_failures=", "follow(...)",
                     "NoSuchWidget", "until=", "no_such_function", "results.summary_table", "undefined_name"]:
        assert expected in found, f"{expected!r} not flagged in:\n{found}"
    # Ordinary prose, commands, paths, headers, columns and right names: nothing to flag.
    right = textwrap.dedent('''
        Type a question and press `Enter`; the `status` is `succeeded` or `not run`. Run
        `scripts/lock --upgrade`, read `protocol/_sse.py`, send `Retry-After` or `x-api-key`,
        set `ATOMEMO_API_KEY`. `Reply.recovered_status`, `chat.history_df()`, `stream.recovered`,
        `evaluate(..., rerun_failed=True)`, `Client(limits=Limits(body=...))`, `LocalServer()`,
        `mo.ui.anywidget(ChatWidget())`, `DifyClient.chat_blocking` and `reply.wait()` exist.

        ```python
        from atomemo_notebook import connect

        reply = connect("dify").ask("Hello")
        reply.citations, len(reply.text)
        ```
        ''')
    assert missing_names(right, "sample.md") == []


# -- the site builds, strictly --------------------------------------------------------------------

@pytest.mark.slow
def test_the_docs_site_builds_with_strict(tmp_path: Path) -> None:
    """A broken link or anchor, a page missing from the nav, or an API reference that does not
    resolve is a warning, and --strict makes any warning fail the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # the theme's banner is not a warning of ours
    # Never --quiet: it hides the warnings from the counter --strict reads, and the build passes.
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "site" / "api" / "chat" / "index.html").is_file()


def test_the_capabilities_table_says_what_each_systems_record_says():
    """The docs' table of systems is checked against the one list of them (protocol/_systems.py):
    a system added there without its column, or a capability changed without its cell, fails."""
    from atomemo_notebook.protocol._systems import SYSTEMS

    lines = (ROOT / "docs" / "reference" / "capabilities.md").read_text().splitlines()
    table = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    header, rows = table[0], {row[0]: row[1:] for row in table[2:]}
    assert header[1:] == [s.label for s in SYSTEMS.values()]
    for index, system in enumerate(SYSTEMS.values()):
        caps = system.capabilities
        assert rows["regenerate / edit (branches)"][index].startswith("yes") == caps.branching, system.name
        assert (rows["files"][index] == "yes") == caps.files, system.name
        assert (rows["a dropped stream"][index].startswith("resumed")) == caps.resume, system.name
        assert (rows["sources, suggested questions"][index] != "-") == (caps.citations or caps.suggestions)
        assert ("cancel" in rows["Stop"][index]) == (caps.stop == "server" or caps.cancel), system.name
        assert (rows["a person in the loop"][index] != "-") == caps.human_input, system.name
        feedback = rows["feedback (like / dislike, a comment)"][index]
        assert (not feedback.startswith("-")) == caps.feedback, system.name
        assert caps.feedback or caps.feedback_reason in feedback, system.name
