#!/bin/sh
# Screenshots of the main states of the app on the demo study, under a virtual X server (Debian: xvfb,
# plus libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-cursor0 for Qt's xcb platform).
# Usage: packaging/screenshots.sh [OUT_DIR]   (default docs/screenshots)
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
exec xvfb-run -a -s "-screen 0 1920x1200x24" env QT_QPA_PLATFORM=xcb "$PY" packaging/screenshots.py "$@"
