#!/usr/bin/env bash
# Every GPU figure of issue 32 (item 6) in one command, one table (bench/gpu_figures.py):
# engine vs bare loop vs HF Trainer, eager and compiled, on BERT-base MLM and GPT-2 CLM,
# MFU, packing, peak memory vs the estimate, the distill ratio and Liger's kernels.
#
#   bash bench/gpu.sh --wheels          # here, with internet: the packages the lent GPU
#                                       # machine lacks, as Python 3.12 wheels in .whl/
#   bash bench/gpu.sh                   # there (CUDA): the figures, under 8 minutes on an H100
#   bash bench/gpu.sh --json out.json   # also every figure as JSON
#   bash bench/gpu.sh --smoke           # CPU, tiny models, seconds: the plumbing only
#   bash bench/gpu.sh --shapes          # the real models at batch 2, 2 steps: the pre-flight
#
# The lent machine (docs: the device tool) has CUDA PyTorch, transformers, accelerate and
# peft, no internet, and not the rest of Stagelab's dependencies: carry .whl/ to it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# What the lent machine's image lacks of what the benches import; versions as installed here.
WHEELS=(pydantic pydantic_core annotated_types typing_inspection typing_extensions
        SQLAlchemy alembic Mako datasets dill multiprocess liger_kernel)

if [[ "${1:-}" == "--wheels" ]]; then
    mkdir -p .whl  # ignored (.gitignore); the device tool's run carries it: carry [".whl"]
    for name in "${WHEELS[@]}"; do
        version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" \
            "$name" 2>/dev/null || true)
        # liger-kernel is the gpu extra (not installed here): the newest.
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "${name}${version:+==$version}"
    done
    ls -1 .whl
    exit 0
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# The packages missing here, by name (none where Stagelab is installed).
missing() {
    "$PYTHON" -c 'import importlib.util as u, sys
print(" ".join(n for n in sys.argv[1:] if u.find_spec(n) is None))' \
        torch transformers accelerate datasets pydantic sqlalchemy alembic
}
lacking=$(missing)
if [[ -n "$lacking" ]] && compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/stagelab-site .whl/*.whl
    export PYTHONPATH="/tmp/stagelab-site:$PYTHONPATH"
    lacking=$(missing)
fi
if [[ -n "$lacking" ]]; then
    echo "bench/gpu.sh: missing $lacking: run \`bash bench/gpu.sh --wheels\` where pip reaches PyPI and bring .whl/ along" >&2
    exit 2
fi

exec "$PYTHON" bench/gpu_figures.py "$@"
