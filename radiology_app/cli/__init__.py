"""The ``radiology-app`` command line: one entry point with subcommands.

Each submodule registers its subcommands; none imports torch at module level, so ``--help`` and
``--version`` answer quickly. Every subcommand takes ``--json`` (see shared cli-contract).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

from radiology_app import __version__
from radiology_app.core.errors import OperationCancelled, RadiologyAppError
from radiology_app.core.guard import is_recoverable, one_line

#: Submodules of this package that register subcommands, in help order.
COMMAND_MODULES = (
    "studies",
    "clinical",
    "segmentation_cmds",
    "diagnosis_cmds",
    "analysis",
    "batch_cmds",
    "gui",
    "desktop_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="radiology-app",
        description="Chest-CT nodule workstation. Results are AI suggestions for a clinician to review.",
    )
    parser.add_argument("--version", action="version", version=f"radiology-app {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        full = f"{__name__}.{name}"
        if importlib.util.find_spec(full) is None:
            continue
        importlib.import_module(full).register(sub)
    return parser


def _subject(args: argparse.Namespace) -> str:
    """What the command worked on (study, files), for its error line."""
    for name in ("study", "study_uid", "file", "paths"):
        value = getattr(args, name, None)
        if value:
            items = value if isinstance(value, list | tuple) else [value]
            return " " + ", ".join(str(v) for v in items[:3]) + (" ..." if len(items) > 3 else "")
    return ""


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``... | head``): stop quietly, as command-line tools do."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status.

    Every failure of a handler ends as one line on stderr naming the command and what it worked on:
    the application's own errors, and anything else (a native extension's ``PanicException``
    included) except Ctrl-C and exits; the traceback of an unexpected one goes to the log file.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    from radiology_app.core.logs import configure_logging

    configure_logging(verbose=args.verbose)
    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except OperationCancelled:
        print("radiology-app: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("radiology-app: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except RadiologyAppError as exc:
        print(f"radiology-app: error: {one_line(exc, limit=1000)}", file=sys.stderr)
        return 1
    except BaseException as exc:
        if not is_recoverable(exc):
            raise
        logging.getLogger(__name__).info("%s failed", args.command, exc_info=exc)
        print(
            f"radiology-app: error: {args.command}{_subject(args)}: {one_line(exc, limit=1000)}",
            file=sys.stderr,
        )
        return 1
