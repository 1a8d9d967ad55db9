"""Fixtures for the control tests: orders enabled against the simulator, files in tmp."""

from __future__ import annotations

from typing import Any

import pytest

from ibkr_mcp.config import Settings


@pytest.fixture
def controls_settings(settings_for: Any, sim: Any) -> Any:
    """A factory: orders enabled, paper mode, plus ``overrides``."""

    def build(**overrides: Any) -> Settings:
        # A wide band lets a LMT far below the market rest (working orders to cancel).
        values: dict[str, Any] = {"ORDERS_ENABLED": True, "PRICE_BAND_PCT": 60}
        values.update(overrides)
        return settings_for(sim.port, **values)  # type: ignore[no-any-return]

    return build
