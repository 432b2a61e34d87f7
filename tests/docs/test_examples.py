"""The examples in README.md and docs/ run here, so the docs cannot rot.

A fenced block runs only when the line right before it is a marker comment
(invisible on GitHub):

- ``<!-- test: file PATH -->`` before a ```` ```python ```` block: the block is
  written to ``PATH`` under a temporary directory (missing ``__init__.py`` files
  of its packages are created), so a worker can import it like a user's module.
- ``<!-- test: run -->`` before a ```` ```python ```` block: the block is
  executed in this process; the blocks of one document share one namespace and
  run in order.
- ``<!-- test: run -->`` before a ```` ```console ```` block: every line that
  starts with ``$ `` is run in a shell and must exit 0 (the lines after it are
  sample output, not checked).

Everything runs in the temporary directory, which is the current directory
(so the default database, ``sqlite:///var/tasktable.sqlite3``, and the default
log file are fresh per document) and is first on ``sys.path``. ``TASKTABLE_*``
variables of the caller are removed. After the blocks, the statuses of the
tasks left in the table must be the ones the document leads to.

The relative links of these pages must name files and headings that exist
(links to pages still being written elsewhere are checked once they exist).
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasktable import TaskTable

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

_BLOCK = re.compile(
    r"^<!-- test: (?P<kind>run|file)(?: (?P<path>\S+))? -->\n"
    r"```(?P<lang>\w+)\n(?P<code>.*?)^```$",
    re.M | re.S,
)

#: Each document, and the task statuses its examples leave in the table.
DOCUMENTS = {
    "README.md": {"success": 2},
    "docs/tutorial.md": {"success": 3, "error": 1},
    "docs/handlers.md": {"success": 2, "error": 1, "pending": 1},
}


@dataclass(frozen=True)
class Block:
    kind: str
    lang: str
    code: str
    path: str | None
    line: int


def blocks(document: str) -> list[Block]:
    text = (ROOT / document).read_text(encoding="utf-8")
    found = [
        Block(
            kind=m["kind"],
            lang=m["lang"],
            code=m["code"],
            path=m["path"],
            line=text.count("\n", 0, m.start()) + 2,
        )
        for m in _BLOCK.finditer(text)
    ]
    markers = len(re.findall(r"<!-- test:", text))
    assert markers == len(found), f"{document}: a test marker is not right before a fenced block"
    return found


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("TASKTABLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(str(tmp_path)):
            del sys.modules[name]


def write_module(root: Path, block: Block) -> None:
    assert block.path and block.lang == "python", f"line {block.line}: a file must be python"
    target = root / block.path
    target.parent.mkdir(parents=True, exist_ok=True)
    package = target.parent
    while package != root:
        (package / "__init__.py").touch(exist_ok=True)
        package = package.parent
    target.write_text(block.code, encoding="utf-8")
    importlib.invalidate_caches()


def run_python(document: str, block: Block, namespace: dict[str, object]) -> None:
    code = compile(block.code, f"{document}:{block.line}", "exec")
    exec(code, namespace)


def run_console(document: str, block: Block, root: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["COLUMNS"] = "200"
    for line in block.code.splitlines():
        if not line.startswith("$ "):
            continue
        command = line[2:]
        done = subprocess.run(
            command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (
            f"{document}:{block.line}: `{command}` exited {done.returncode}\n"
            f"{done.stdout}\n{done.stderr}"
        )


def statuses(root: Path) -> dict[str, int]:
    with TaskTable(f"sqlite:///{root}/var/tasktable.sqlite3") as table:
        page = table.list(limit=1000)
        return dict(Counter(task.status.value for task in page.tasks))


@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_document_examples_run(document: str, sandbox: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_example_{Path(document).stem}"}
    found = blocks(document)
    assert any(b.kind == "run" for b in found), f"{document} has no example marked to run"
    try:
        for block in found:
            if block.kind == "file":
                write_module(sandbox, block)
            elif block.lang == "python":
                run_python(document, block, namespace)
            elif block.lang == "console":
                run_console(document, block, sandbox)
            else:
                pytest.fail(f"{document}:{block.line}: cannot run a {block.lang} block")
    finally:
        for value in namespace.values():
            if isinstance(value, TaskTable):
                value.close()
    assert statuses(sandbox) == DOCUMENTS[document]


#: Pages other pieces of work add; links to them are checked once they exist.
LATER_PAGES = {"docs/reliability.md", "docs/api.md", "docs/dashboard.md", "docs/security.md"}
OWN_PAGES = [
    "README.md",
    "docs/tutorial.md",
    "docs/handlers.md",
    "docs/workers.md",
    "docs/databases.md",
    "docs/operations.md",
]
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    found = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("document", OWN_PAGES)
def test_document_links_resolve(document: str) -> None:
    source = ROOT / document
    for match in _LINK.finditer(source.read_text(encoding="utf-8")):
        target = match["target"]
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        page = (source.parent / path).resolve() if path else source
        relative = page.relative_to(ROOT).as_posix()
        if relative in LATER_PAGES and not page.exists():
            continue
        assert page.exists(), f"{document}: {target} names no file"
        if anchor:
            assert anchor in anchors(page), f"{document}: {target} names no heading"
