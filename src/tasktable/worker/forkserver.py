"""The fork server's preload: what every process slot runs, imported once.

On Linux a slot process is a fork of :mod:`multiprocessing`'s fork server, a
fresh single-threaded interpreter the worker starts once (see
``runners.py``). The fork server imports this module before it forks
anything, so each slot starts with the slot's code already imported (no
interpreter start-up, no imports: a few milliseconds instead of a few hundred
CPU milliseconds). Nothing here imports SQLAlchemy or a user's module.

Inside the fork server (and only there) it also:

- ignores SIGTERM: a SIGTERM sent to the worker's whole process group (a
  service manager, ``kill -- -PGID``) must not end the fork server, since its
  end ends every slot process (they die with their parent,
  ``PR_SET_PDEATHSIG``) while the worker is still in its shutdown grace. Slot
  processes install their own SIGTERM handler. The fork server ends when the
  worker does (its "alive" pipe reaches end of file).
- freezes the garbage collector's view of what is loaded, so that the slot
  processes' collections leave those objects (and their shared pages) alone.
"""

from __future__ import annotations

import gc
import signal
import sys

from . import child  # noqa: F401  (the point of this module: import it in the fork server)


def in_fork_server() -> bool:
    """Whether this code runs under ``multiprocessing.forkserver.main`` (its preload)."""
    server = sys.modules.get("multiprocessing.forkserver")
    main = getattr(server, "main", None)
    code = getattr(main, "__code__", None)
    if code is None:
        return False
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


if in_fork_server():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.freeze()
