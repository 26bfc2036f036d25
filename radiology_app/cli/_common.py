"""Helpers shared by the subcommands: ``--json`` output, terminal progress bars, argument types."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import enum
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radiology_app.core.progress import Progress, ProgressCallback

Handler = Callable[[argparse.Namespace], int]


def add_command(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    """Add a subcommand with the common ``--json`` flag and bind its handler."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.set_defaults(handler=handler)
    return parser


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, paths, dates, enums, tuples and numpy scalars/arrays to JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def emit(args: argparse.Namespace, payload: Any, human: Callable[[], str] | str | None = None) -> None:
    """Print ``payload`` as JSON when ``--json`` was given, otherwise the human text."""
    if getattr(args, "json", False):
        json.dump(to_jsonable(payload), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        text = human() if callable(human) else human
        if text is None:
            text = json.dumps(to_jsonable(payload), ensure_ascii=False, indent=2)
        print(text)


def terminal_progress(label: str) -> ProgressCallback | None:
    """A progress bar on stderr when it is a terminal; ``None`` otherwise (no noise in logs or pipes)."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def _show(p: Progress) -> None:
        now = time.monotonic()
        finished = p.total is not None and p.done >= p.total
        if now - last[0] < 0.1 and not finished:
            return
        last[0] = now
        if p.total:
            width = 30
            filled = int(width * min(1.0, p.done / p.total))
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r{label} [{bar}] {p.done}/{p.total} {p.unit} {p.message[:40]:<40}"
        else:
            text = f"\r{label} {p.done} {p.unit} {p.message[:40]:<40}"
        sys.stderr.write(text)
        if finished:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return _show
