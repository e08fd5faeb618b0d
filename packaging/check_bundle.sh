#!/usr/bin/env bash
# Check a built bundle (packaging/build_bundle.sh) from outside the checkout: its window
# starts offscreen and writes a screenshot, `validate` works, and its own engine process
# (the same executable with --engine) trains a tiny plan to `finished`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe="$root/build/bundle/dist/stagelab/stagelab"
work=$(mktemp -d)
cd "$work"  # not the checkout: the bundle must not need it
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 STAGELAB_HOME="$work/ws"

echo "== start-up: window shown and screenshot written (5 starts)"
for i in 1 2 3 4 5; do
  /usr/bin/time -f "%e s" "$exe" gui --screenshot "$work/window-$i.png" 2>&1 | tail -1
done
test -s "$work/window-1.png"

echo "== validate the built-in demo"
"$exe" validate --demo

echo "== a tiny plan trained by the bundle's own engine"

head -300 "$root/resources/data/corpus.txt" > "$work/corpus.txt"
cat > "$work/tiny.yaml" <<PLAN
name: bundle-check
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 16, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 20
    eval: {every_steps: 10, metrics: [loss, accuracy]}
PLAN
/usr/bin/time -f "run: %e s" "$exe" run "$work/tiny.yaml"
"$exe" ls | tee "$work/ls.txt"
grep -q finished "$work/ls.txt"
echo "bundle OK: $(du -sh "$root/build/bundle/dist/stagelab" | cut -f1); screenshots in $work"
