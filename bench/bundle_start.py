"""Start-up of the PyInstaller bundle against the venv install, measured side by side:
each starts, renders its window offscreen to a PNG and exits (`stagelab gui --screenshot`),
7 interleaved rounds, from a folder outside the checkout.

    python bench/bundle_start.py [--rounds 7]    (after bash packaging/build_bundle.sh)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="stagelab-bundle-start-")
    env = dict(
        os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", STAGELAB_HOME=f"{folder}/ws"
    )
    commands = {
        "bundle": [str(ROOT / "build/bundle/dist/stagelab/stagelab")],
        "venv": [str(Path(sys.executable).with_name("stagelab"))],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(
                [*cmd, "gui", "--screenshot", f"{folder}/{name}.png"],
                cwd=folder,
                env=env,
                capture_output=True,
                check=True,
            )
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(
            f"{name}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )
    print(
        f"ratio bundle/venv: {statistics.median(times['bundle']) / statistics.median(times['venv']):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
