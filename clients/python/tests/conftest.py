from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Harness
from .sidecar import Sidecar


@pytest.fixture
def sidecar() -> Iterator[Sidecar]:
    s = Sidecar()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def harness() -> Iterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        h.close()
