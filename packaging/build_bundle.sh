#!/usr/bin/env bash
# Build the one-folder desktop bundle of Stagelab with PyInstaller, then check it:
#   bash packaging/build_bundle.sh            -> build/bundle/dist/stagelab/stagelab
# The bundle carries the Python, Qt and the torch of this machine (the CPU wheel here).
# Then `bash packaging/check_bundle.sh` starts it offscreen and trains a tiny plan with it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash packaging/bootstrap.sh test --co -q >/dev/null
.venv/bin/python -m pip install -q "pyinstaller>=6.10"
out=build/bundle
rm -rf "$out"
start=$(date +%s)
.venv/bin/python -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist" --workpath "$out/work" packaging/stagelab.spec
echo "built $out/dist/stagelab in $(( $(date +%s) - start )) s;" \
  "size $(du -sh "$out/dist/stagelab" | cut -f1)"
