"""Test-wide settings: no network, no screen, and a private workspace per test session."""

import os
import tempfile

# Set before anything imports Qt or datasets: hub names must fail at once, not after ~47 s.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests never write to the person's own workspace.
os.environ["STAGELAB_HOME"] = tempfile.mkdtemp(prefix="stagelab-test-home-")
