"""Order-book test fixtures: a manual-clock simulator, both client libraries, a log watchdog."""

from __future__ import annotations

from types import ModuleType

import pytest
from sim_watch import IbLogWatch, ib_logs, msim

__all__ = ["IbLogWatch", "ib_logs", "msim"]


@pytest.fixture(params=["ib_async", "ib_insync"])
def lib(request: pytest.FixtureRequest) -> ModuleType:
    """Each unmodified client library in turn."""
    return pytest.importorskip(request.param)
