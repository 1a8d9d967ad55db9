"""Shared builders for the safety tests: clean settings, intents, quotes and contexts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from safety_helpers import (
    _DEFAULT,
    LIVE,
    NOW,
    PAPER,
    VALID_TOKEN,
    build_intent,
    build_quote,
    build_settings,
)

from ibkr_mcp.config import Settings
from ibkr_mcp.safety.context import GateContext, OrderIntent, OverrideFile, TokenCheck


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment of whoever runs the tests must not change the safety settings under test.
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_settings(tmp_path: Any) -> Callable[..., Settings]:
    """Settings anchored at tmp_path, ignoring any .env file."""

    def make(**overrides: Any) -> Settings:
        return build_settings(tmp_path, **overrides)

    return make


@pytest.fixture
def make_ctx(make_settings: Callable[..., Settings]) -> Callable[..., GateContext]:
    """A GateContext built directly (no I/O), defaulting to a valid paper LMT order."""

    def make(
        *,
        settings: Settings | None = None,
        intent: OrderIntent | None = None,
        mode: str = "place",
        managed: tuple[str, ...] = (PAPER, LIVE),
        quote: Any = _DEFAULT,
        kill: bool = False,
        override: OverrideFile | None = None,
        token: TokenCheck = VALID_TOKEN,
        now: datetime = NOW,
        **setting_overrides: Any,
    ) -> GateContext:
        return GateContext(
            settings=settings or make_settings(**setting_overrides),
            intent=intent or build_intent(),
            mode=mode,  # type: ignore[arg-type]
            managed_accounts=managed,
            quote=build_quote() if quote is _DEFAULT else quote,
            now=now,
            kill_switch_active=kill,
            override=override,
            token=token,
        )

    return make
