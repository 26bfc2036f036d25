# Set-up and everyday commands. `make demo` and `make test` are the README's two commands.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libglib2.0-0 \
	fonts-dejavu-core poppler-utils dicom3tools xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-cursor0 orthanc orthanc-dicomweb dcmtk \
	desktop-file-utils x11-utils bc

.PHONY: setup system-deps demo gui test lint benchmarks fuzz bundle bundle-smoke clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Debian packages for Qt, PDF rendering, DICOM validation, PACS tests (needs root or sudo).
system-deps:
	@if command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	else echo "not a Debian system: install the Qt runtime libraries and poppler-utils yourself"; fi

demo: setup
	$(VENV)/bin/radiology-app demo

gui: setup
	$(VENV)/bin/radiology-app gui

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

benchmarks: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -s tests/benchmarks -o addopts=""

# 10,000 seeded mutations of real DICOM files through import, show and volume reading (FUZZ_COUNT, FUZZ_SEED).
fuzz: setup
	$(PY) -m pytest -q -s tests/benchmarks/test_bench_fuzz.py -o addopts=""

# The self-contained one-folder application (PyInstaller), dist/radiology-app/; see packaging/README.md.
bundle: setup
	$(PY) -m pip install --quiet 'pyinstaller>=6.10'
	PYTHONPATH=$(CURDIR) $(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist \
	  --workpath build/pyinstaller packaging/radiology-app.spec

# Starts the built bundle under Xvfb: every command's --help, the window, demo --no-gui and its PDF.
bundle-smoke:
	packaging/bundle_smoke.sh dist/radiology-app

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
