"""``fake_server``: a scripted OpenAI-compatible server on 127.0.0.1 for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engines.remote.fake_server import FakeServer, serve


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer())
