"""Logging set-up: the log file (rotating) that the seed's module wrote errors to."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


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
        handlers.append(err)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._tasktable = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
