"""Canonical JSON, row hashes, secret masking and exact decimal text."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibkr_mcp.audit import canonical_json, mask_secrets, row_hash, token_id
from ibkr_mcp.audit._codec import dec_text, to_json, utc_iso
from ibkr_mcp.models import ContractRef


def test_row_hash_is_sha256_of_sorted_orjson_without_row_hash() -> None:
    row = {"seq": 1, "id": 1, "prev_hash": "0" * 64, "outcome": "ok", "row_hash": "ignored"}
    expected = hashlib.sha256(
        orjson.dumps({k: v for k, v in row.items() if k != "row_hash"}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    assert row_hash(row) == expected
    assert row_hash(dict(reversed(row.items()))) == expected
    assert row_hash({**row, "outcome": "ok "}) != expected
    assert canonical_json({"b": 1, "a": None}) == b'{"a":null,"b":1}'


def test_mask_secrets_rules() -> None:
    masked = mask_secrets(
        {
            "Password": "p",
            "client_secret": "s",
            "x_api_key": "k",
            "api_token": "t",
            "token": "confirm-me",
            "token_id": "tok_1",
            "preview_hash": "h",
            "items": ({"refresh_token": "r"}, 3),
            "empty_token": None,
            "weird_token": 123,
        }
    )
    assert masked == {
        "Password": "***",
        "client_secret": "***",
        "x_api_key": "***",
        "api_token": "***",
        "token": token_id("confirm-me"),
        "token_id": "tok_1",
        "preview_hash": "h",
        "items": [{"refresh_token": "***"}, 3],
        "empty_token": None,
        "weird_token": "***",
    }
    assert token_id("confirm-me").startswith("tok_") and len(token_id("x")) == 20


class Color(Enum):
    RED = "red"


def test_to_json_handles_domain_values() -> None:
    text = to_json(
        {
            "contract": ContractRef(symbol="AAPL"),
            "qty": Decimal("0.10"),
            "path": Path("/x"),
            "tags": {"b", "a"},
            "color": Color.RED,
            "raw": b"\x01",
            7: "int key",
        }
    )
    assert text is not None
    data = orjson.loads(text)
    assert data["contract"]["symbol"] == "AAPL" and data["qty"] == "0.10"
    assert data["path"] == "/x" and data["tags"] == ["a", "b"]
    assert data["color"] == "red" and data["raw"] == "01" and data["7"] == "int key"
    assert to_json(None) is None


def test_to_json_keeps_what_json_numbers_cannot_hold_as_text() -> None:
    # A caller's 1e400 parses as inf; JSON has no such number and orjson would store null,
    # losing what was sent (issue 9 item 4: out-of-range values are stored as text).
    text = to_json({"quantity": float("inf"), "price": [float("-inf"), float("nan")], "n": 1.5})
    assert text is not None
    assert orjson.loads(text) == {"n": 1.5, "price": ["-inf", "nan"], "quantity": "inf"}


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_text_is_exact(value: Decimal) -> None:
    text = dec_text(value, "q")
    assert text is not None and "E" not in text.upper()
    assert Decimal(text) == value


def test_decimal_text_rejects_inexact_values() -> None:
    assert dec_text(Decimal("0.1"), "q") == "0.1"
    assert dec_text(5, "q") == "5"
    assert dec_text(None, "q") is None
    with pytest.raises(TypeError):
        dec_text(0.1, "q")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        dec_text(True, "q")
    with pytest.raises(ValueError, match="finite"):
        dec_text(Decimal("Infinity"), "q")


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_iso(datetime(2026, 1, 1))  # noqa: DTZ001
