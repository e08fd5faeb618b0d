"""One drag with a real mouse, through an X server (Xvfb), from the palette to the plan."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("real_mouse_drag.py")


@pytest.mark.xvfb
@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="needs Xvfb (installed by .ci/run)")
def test_dragging_a_palette_item_with_the_mouse_adds_a_stage():
    pytest.importorskip("Xlib")
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "after: ['pretrain-mlm', 'topics', 'sentiment', 'train']" in proc.stdout, (
        proc.stdout + proc.stderr[-2000:]
    )
