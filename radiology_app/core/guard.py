"""One guard for code that may fail in ways nobody planned: native decoders, whole commands.

Native extensions can raise ``BaseException`` subclasses that are not ``Exception`` (a Rust decoder's
``pyo3_runtime.PanicException``), so ``except Exception`` lets them through. :func:`is_recoverable`
says which failures a guard may turn into an error message (everything except the interpreter's own
stop requests), :func:`one_line` writes that message, and :func:`native_stderr_captured` keeps what a
native library prints on file descriptor 2 (a Rust panic's message and backtrace) off the console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

from radiology_app.core.errors import RadiologyAppError

log = logging.getLogger(__name__)

#: Stop requests of the interpreter and the user: never swallowed by a guard.
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)

_stderr_lock = threading.Lock()


def is_recoverable(exc: BaseException) -> bool:
    """Whether a guard may report ``exc`` as an error and go on (all but Ctrl-C and exits)."""
    return not isinstance(exc, FATAL)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``exc`` as ``Type: message`` on one line, shortened to ``limit`` characters.

    The type is left out for the application's own errors (their message is written for the user).
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, RadiologyAppError) and not text.startswith(type(exc).__name__):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Redirect file descriptor 2 into a temporary file inside the block; log what was written.

    Only one thread redirects at a time. Where descriptor 2 cannot be redirected (no such descriptor),
    the block runs unchanged.
    """
    with _stderr_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read(4000).decode("utf-8", "replace").strip()
                if text:
                    log.debug("a native decoder wrote: %s", text.splitlines()[0][:200])
