"""The ``radiology-app`` command line: one entry point with subcommands.

Each submodule registers its subcommands; none imports torch at module level, so ``--help`` and
``--version`` answer quickly. Every subcommand takes ``--json`` (see shared cli-contract).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from radiology_app import __version__
from radiology_app.core.errors import OperationCancelled, RadiologyAppError

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    from radiology_app.core.logs import configure_logging

    configure_logging(verbose=args.verbose)
    try:
        return int(args.handler(args) or 0)
    except OperationCancelled:
        print("radiology-app: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("radiology-app: interrupted", file=sys.stderr)
        return 130
    except RadiologyAppError as exc:
        print(f"radiology-app: error: {exc}", file=sys.stderr)
        return 1
