#!/bin/sh
# Smoke test of the built bundle (`make bundle` first): every CLI command answers --help, the window opens
# under a virtual X server (cold start to the first mapped window is printed), `demo --no-gui` writes a
# PDF report with every model's results (text and embedded fonts checked), and `export` writes the demo's
# DICOM SEG, SR and encapsulated PDF. Runs in a private data folder; needs xvfb, x11-utils, poppler-utils.
# Usage: packaging/bundle_smoke.sh [BUNDLE_DIR]   (default dist/radiology-app; KEEP_PDF=FILE keeps the report)
set -eu
cd "$(dirname "$0")/.."
BUNDLE=${1:-dist/radiology-app}
APP="$BUNDLE/radiology-app"
[ -x "$APP" ] || { echo "bundle_smoke: $APP not found (run make bundle)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export RADIOLOGY_APP_HOME="$WORK/home"
cd "$WORK"  # an empty folder: nothing may come from a source checkout
APP=$(cd "$OLDPWD" && cd "$(dirname "$APP")" && pwd)/radiology-app

echo "bundle: $(du -sh "$(dirname "$APP")" | cut -f1) in $(find "$(dirname "$APP")" -type f | wc -l) files"
"$APP" --version
for cmd in $("$APP" --help | sed -n 's/^    \([a-z][a-z-]*\) .*/\1/p;s/^    \([a-z][a-z-]*\)$/\1/p'); do
  "$APP" "$cmd" --help >/dev/null || { echo "bundle_smoke: '$cmd --help' failed" >&2; exit 1; }
  printf '%s ' "$cmd"
done
echo "answer --help"

# Cold start to the first window: from exec to a mapped top-level window titled "Radiology App".
xvfb-run -a -s "-screen 0 1600x1000x24" sh -c '
  start=$(date +%s.%N)
  "$0" gui & pid=$!
  while ! xwininfo -root -tree 2>/dev/null | grep -q "\"Radiology App"; do
    kill -0 $pid 2>/dev/null || { echo "bundle_smoke: the window never opened" >&2; exit 1; }
    sleep 0.05
  done
  end=$(date +%s.%N)
  echo "cold start to first window: $(echo "$end - $start" | bc) s"
  kill $pid; wait $pid 2>/dev/null || true
' "$APP"

start=$(date +%s)
"$APP" demo --no-gui --json > demo.json
echo "demo --no-gui: $(( $(date +%s) - start )) s"
PDF=$(sed -n 's/^  "report": "\(.*\)",\{0,1\}$/\1/p' demo.json)
[ -f "$PDF" ] || { echo "bundle_smoke: demo wrote no report" >&2; exit 1; }
if grep -q "unavailable" demo.json || ! grep -q '"diagnosis": "' demo.json; then
  echo "bundle_smoke: a model did not run in the bundle: $(grep -o '"[^"]*unavailable[^"]*"' demo.json | head -1)" >&2
  exit 1
fi
pdfinfo "$PDF" | grep -q '^Pages: *[1-9]' || { echo "bundle_smoke: $PDF is not a readable PDF" >&2; exit 1; }
pdftotext "$PDF" - | grep -q "PULMONARY NODULE REPORT" || { echo "bundle_smoke: $PDF lacks the report title" >&2; exit 1; }
pdftotext "$PDF" - | grep -q "AI suggestions" || { echo "bundle_smoke: $PDF lacks the AI statement" >&2; exit 1; }
pdffonts "$PDF" | grep -q "DejaVuSansCondensed.*yes" || { echo "bundle_smoke: $PDF lacks the embedded font" >&2; exit 1; }
[ -z "${KEEP_PDF:-}" ] || cp "$PDF" "$KEEP_PDF"
UID=$(sed -n 's/^  "study_uid": "\(.*\)",$/\1/p' demo.json)
"$APP" export "$UID" --dicom exported --deidentify > /dev/null
[ "$(find exported -name '*.dcm' | wc -l)" -ge 3 ] || { echo "bundle_smoke: export wrote no SEG/SR/PDF" >&2; exit 1; }
echo "bundle_smoke: ok ($(pdfinfo "$PDF" | sed -n 's/^Pages: *//p') pages, $(grep -c '"id": "N' demo.json) nodules)"
