"""Logging set-up: the log file (rotating) that the seed's module wrote errors to."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


class _OneLine(logging.Formatter):
    """stderr shows the first line of each record; the log file keeps the traceback."""

    def __init__(self, log_file: str | None) -> None:
        super().__init__(_FORMAT)
        self.where = f" (details in {log_file})" if log_file else ""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        first, sep, _rest = text.partition("\n")
        return first + self.where if sep else first


def setup_logging(log_file: str | None, *, verbose: bool = False, stderr: bool = True) -> None:
    """Send tasktable's logs to ``log_file`` (rotating, 10 MB x 5) and to stderr."""
    logger = logging.getLogger("tasktable")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for existing in list(logger.handlers):
        if getattr(existing, "_tasktable", False):
            logger.removeHandler(existing)
            existing.close()
    handlers: list[logging.Handler] = []
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        )
    if stderr:
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(logging.DEBUG if verbose else logging.WARNING)
        err.setFormatter(logging.Formatter(_FORMAT) if verbose else _OneLine(log_file))
        handlers.append(err)
    for handler in handlers:
        if handler.formatter is None:
            handler.setFormatter(logging.Formatter(_FORMAT))
        handler._tasktable = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
