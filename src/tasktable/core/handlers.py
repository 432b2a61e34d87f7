"""Handler paths and the ``TASKTABLE_HANDLERS`` allowlist: pure string work.

Nothing here imports a handler: the allowlist is checked on the path's text
first, so a path that is not allowed never gets to run module code.
"""

from __future__ import annotations

import fnmatch
import re

from ..errors import HandlerError, HandlerNotAllowed

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = rf"{_IDENT}(?:\.{_IDENT})*"
_COLON_FORM = re.compile(rf"^({_MODULE}):({_IDENT}(?:\.{_IDENT})*)$")
_DOTTED_FORM = re.compile(rf"^({_MODULE})\.({_IDENT})$")
MAX_HANDLER_LENGTH = 255


def normalize_handler_path(path: str) -> str:
    """Return ``package.module:Name`` for either accepted spelling.

    ``package.module.Name`` is read as module ``package.module``, attribute ``Name``.
    """
    text = path.strip() if isinstance(path, str) else ""
    if not text:
        raise HandlerError("The handler path is empty; write it as package.module:ClassName.")
    if len(text) > MAX_HANDLER_LENGTH:
        raise HandlerError(f"The handler path is longer than {MAX_HANDLER_LENGTH} characters.")
    match = _COLON_FORM.match(text)
    if match:
        return text
    match = _DOTTED_FORM.match(text)
    if match:
        return f"{match.group(1)}:{match.group(2)}"
    raise HandlerError(
        f"Handler path {path!r} is not an import path; write it as package.module:ClassName."
    )


def split_handler_path(path: str) -> tuple[str, str]:
    module, _, attr = normalize_handler_path(path).partition(":")
    return module, attr


class Allowlist:
    """The handler paths that may be enqueued and run (fnmatch patterns).

    ``None`` patterns means unset: every path is allowed (the seed's behaviour).
    A path matches when its ``module:Name`` form or its ``module.Name`` form
    matches a pattern, so ``myapp.tasks:*`` and ``myapp.tasks.*`` both work.
    """

    def __init__(self, patterns: tuple[str, ...] | None) -> None:
        self.patterns = patterns

    @classmethod
    def parse(cls, value: str | None) -> Allowlist:
        if value is None:
            return cls(None)
        patterns = tuple(p.strip() for p in value.split(",") if p.strip())
        return cls(patterns)

    @property
    def is_set(self) -> bool:
        return self.patterns is not None

    def allows(self, path: str) -> bool:
        if self.patterns is None:
            return True
        try:
            colon = normalize_handler_path(path)
        except HandlerError:
            return False
        dotted = colon.replace(":", ".")
        return any(
            fnmatch.fnmatchcase(colon, p) or fnmatch.fnmatchcase(dotted, p) for p in self.patterns
        )

    def check(self, path: str) -> str:
        """Return the normalized path, or raise :class:`HandlerNotAllowed`."""
        colon = normalize_handler_path(path)
        if not self.allows(colon):
            raise HandlerNotAllowed(
                f"Handler {colon!r} is not allowed by TASKTABLE_HANDLERS "
                f"({', '.join(self.patterns or ()) or 'empty'}); add a pattern that matches it."
            )
        return colon
