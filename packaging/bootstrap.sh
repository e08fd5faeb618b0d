#!/usr/bin/env bash
# One command from a fresh clone to a working Stagelab:
#   bash packaging/bootstrap.sh run [stagelab arguments]   install, then open Stagelab
#   bash packaging/bootstrap.sh test [pytest arguments]    install, then run every test
# It creates .venv/ beside the checkout and installs only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-run}
shift || true

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.stagelab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Stagelab and its dependencies into .venv (about 2 minutes the first time)..."
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and exact: a looser request lets pip pick a newer multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test,bench]"
  echo "$want" > "$stamp"
fi

case "$action" in
  run)
    exec .venv/bin/stagelab "$@"
    ;;
  test)
    export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
    # Two pytest-xdist workers unless STAGELAB_TEST_WORKERS=N says otherwise (0: one
    # process; a later -n wins). Each keeps an engine server (tests/conftest.py), so the
    # workers overlap training and waiting rather than imports (README, "Test").
    exec .venv/bin/python -m pytest -n "${STAGELAB_TEST_WORKERS:-2}" "$@"
    ;;
  *)
    echo "usage: bash packaging/bootstrap.sh run|test [arguments]" >&2
    exit 2
    ;;
esac
