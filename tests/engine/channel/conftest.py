"""A live run per test: real recorder, real SQLite store, real socket server."""

import pytest

from tests.engine.channel.live import Live


@pytest.fixture
def live(tmp_path):
    run = Live(tmp_path / "ws")
    yield run
    run.close()
