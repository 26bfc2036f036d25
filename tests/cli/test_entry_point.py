"""The entry point answers --help and --version without loading torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from radiology_app import __version__


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_version_and_help_do_not_import_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from radiology_app.cli import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        "    print(out.getvalue())\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
        "print('QT' if 'PySide6' in sys.modules else 'NO-QT')\n"
    )
    out = _run(code)
    assert f"radiology-app {__version__}" in out
    assert "usage: radiology-app" in out
    assert "NO-TORCH" in out
    assert "NO-QT" in out


def test_no_subcommand_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "radiology_app"], capture_output=True, text=True)
    assert proc.returncode == 2


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``radiology-app studies --json | head -c 1``: the reader leaves; no BrokenPipeError traceback."""
    import os

    from radiology_app.core.types import Patient, Study
    from radiology_app.store.database import StudyDatabase

    with StudyDatabase(tmp_path / "studies.sqlite3") as db:  # enough studies to overflow the pipe buffer
        run = db.begin_import_run([])
        db.write_import_batch(
            run,
            patients=[Patient(f"P{i}", "A^B") for i in range(2000)],
            studies=[Study(f"1.2.3.{i}", f"P{i}") for i in range(2000)],
            series=[],
            instances=[],
            issues=[],
        )
    env = {**os.environ, "RADIOLOGY_APP_HOME": str(tmp_path)}
    proc = subprocess.run(
        f"{sys.executable} -m radiology_app studies --json | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.stdout == "["
    assert proc.stderr == ""
