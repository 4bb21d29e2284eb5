from __future__ import annotations

from collections.abc import Iterator

import pytest

from .sidecar import Sidecar


@pytest.fixture
def sidecar() -> Iterator[Sidecar]:
    s = Sidecar()
    try:
        yield s
    finally:
        s.stop()
