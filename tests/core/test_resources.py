"""The shipped resources reach the wheel as package data, and an installed copy is found and verified."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p.relative_to(ROOT / "resources").as_posix()
    for p in (ROOT / "resources").rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
)


def _setuptools() -> dict[str, object]:
    config: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    return config


def test_every_resource_file_is_package_data() -> None:
    globs = _setuptools()["package-data"]["radiology_app_resources"]  # type: ignore[index]
    left_out = [f for f in SHIPPED if f != "__init__.py" and not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not left_out, f"add these to package-data in pyproject.toml: {left_out}"
    assert {"models/nodule_unet.safetensors", "models/nodule_unet.md", "demo/note_en.txt"} <= set(SHIPPED)


def test_every_package_folder_is_listed() -> None:
    listed = set(_setuptools()["packages"])  # type: ignore[arg-type]
    found = {
        p.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for top in ("radiology_app", "segmentation")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_the_wheel_carries_the_resources_and_an_install_finds_and_verifies_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("radiology_app", "segmentation", "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("radiology_app-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    missing = [f for f in SHIPPED if f"radiology_app_resources/{f}" not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not any(n.startswith(("tests/", "radiology_app_resources/training")) for n in names)
    code = (
        "from radiology_app.core.config import RESOURCES_DIR; from segmentation.weights import MODELS_DIR; "
        "from radiology_app.diagnosis.weights import FUSED_CARD, FUSED_WEIGHTS, verify_weights; "
        "verify_weights(FUSED_WEIGHTS, FUSED_CARD); print(RESOURCES_DIR); print(MODELS_DIR)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    installed = tmp_path / "site" / "radiology_app_resources"
    assert run.stdout.split() == [str(installed), str(installed / "models")]
