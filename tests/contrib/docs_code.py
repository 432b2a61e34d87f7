"""The code of docs/django.md, docs/flask.md and docs/fastapi.md, for the tests to run.

Same markers as ``tests/docs``: ``<!-- test: file PATH -->`` right before a
fenced python block makes it a module at ``PATH`` (under a directory the tests
put on ``sys.path``), ``<!-- test: run -->`` makes it a snippet the tests
execute themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_BLOCK = re.compile(
    r"^<!-- test: (?P<kind>run|file)(?: (?P<path>\S+))? -->\n"
    r"```(?P<lang>\w+)\n(?P<code>.*?)^```$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    kind: str
    path: str | None
    lang: str
    code: str
    line: int


def blocks(document: str) -> list[Block]:
    text = (ROOT / document).read_text(encoding="utf-8")
    found = [
        Block(
            kind=m["kind"],
            path=m["path"],
            lang=m["lang"],
            code=m["code"],
            line=text.count("\n", 0, m.start()) + 2,
        )
        for m in _BLOCK.finditer(text)
    ]
    markers = len(re.findall(r"<!-- test:", text))
    assert markers == len(found), f"{document}: a test marker is not right before a fenced block"
    return found


def write_files(document: str, root: Path, replace: dict[str, str] | None = None) -> list[Path]:
    """Write the document's file blocks under ``root`` (with packages); return their paths."""
    written = []
    for block in blocks(document):
        if block.kind != "file":
            continue
        assert block.path and block.lang == "python", f"{document}:{block.line}: not a python file"
        code = block.code
        for old, new in (replace or {}).items():
            code = code.replace(old, new)
        target = root / block.path
        target.parent.mkdir(parents=True, exist_ok=True)
        package = target.parent
        while package != root:
            (package / "__init__.py").touch(exist_ok=True)
            package = package.parent
        target.write_text(code, encoding="utf-8")
        written.append(target)
    return written


def snippets(document: str) -> list[Block]:
    return [b for b in blocks(document) if b.kind == "run"]
