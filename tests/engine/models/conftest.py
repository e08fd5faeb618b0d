"""Fixtures of the model tests: every family's tiny folders (tests/engine/models/families.py),
made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def family_folders(tmp_path_factory, data_dir: Path) -> Path:
    """Every family's pretraining folder (`<family>`) and sentiment classifier folder
    (`<family>-classifier`), made once."""
    from tests.engine.models.families import FAMILIES, classifier_folder, corpus, family_folder

    root = tmp_path_factory.mktemp("families")
    texts = corpus(data_dir)
    for family in FAMILIES:
        family_folder(family, root, texts)
        classifier_folder(family, root, ["negative", "positive"])
    return root
