"""The live override file, read from disk by the facts collector, through the whole chain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from safety_helpers import LIVE, NOW, build_intent, build_quote

from ibkr_mcp.safety.chain import ChainResult, evaluate
from ibkr_mcp.safety.facts import collect_facts, parse_override_text, read_override_file
from ibkr_mcp.safety.tokens import TokenStore

GOOD = f"# approved by ops\naccount={LIVE}\nexpires=2026-01-15T18:00:00+00:00\n"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.fixture
def live(make_settings: Any, tmp_path: Path) -> Any:
    """Place a live order through collect_facts + evaluate with the override at tmp_path."""
    settings = make_settings(
        TRADING_MODE="live", ORDERS_ENABLED=True, LIVE_TRADING_OVERRIDE_FILE=tmp_path / "ov.txt"
    )
    tokens = TokenStore(60)
    intent = build_intent(account=LIVE)
    issued = tokens.issue(intent)

    def place(uid: int | None = None) -> ChainResult:
        ctx = collect_facts(
            settings,
            intent,
            mode="place",
            managed_accounts=(LIVE,),
            quote=build_quote(),
            tokens=tokens,
            token=issued.token,
            now=NOW,
            uid=uid,
        )
        return evaluate(ctx)

    place.path = settings.live_override_path  # type: ignore[attr-defined]
    return place


def refused_reason(result: ChainResult) -> str:
    assert result.refused is not None, "expected a refusal"
    assert result.refused.gate == "live_override"
    return result.refused.reason


def test_valid_override_allows_live_order(live: Any) -> None:
    write(live.path, GOOD)
    result = live()
    assert result.allowed, result.to_dict()


def test_missing_override_refused_with_example(live: Any) -> None:
    result = live()
    assert "does not exist" in refused_reason(result)
    assert result.refused is not None and result.refused.remedy is not None
    assert f"account={LIVE}" in result.refused.remedy
    assert "expires=" in result.refused.remedy


def test_group_or_world_writable_override_refused(live: Any) -> None:
    write(live.path, GOOD, 0o666)
    assert "writable by group or others" in refused_reason(live())
    os.chmod(live.path, 0o620)
    assert "writable by group or others" in refused_reason(live())
    os.chmod(live.path, 0o644)  # world-readable is fine, only writability matters
    assert live().allowed


def test_override_owned_by_someone_else_refused(live: Any) -> None:
    write(live.path, GOOD)
    assert "not owned by the user" in refused_reason(live(uid=os.getuid() + 1))
    assert live(uid=os.getuid()).allowed


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"account={LIVE}\nexpires=2026-01-15T14:59:59+00:00\n", "expired at"),
        (f"account={LIVE}\nexpires=2026-01-15T15:00:00+00:00\n", "expired at"),
        ("account=U1111111\nexpires=2026-01-15T18:00:00+00:00\n", "is for account U1111111"),
        ("account=*\nexpires=2026-01-15T18:00:00+00:00\n", "no wildcards"),
        (f"account={LIVE}\nexpires=2026-01-15T18:00:00\n", "has no UTC offset"),
        (f"account={LIVE}\nexpires=tomorrow\n", "is not an ISO-8601 time"),
        (f"account={LIVE}\n", "missing required line(s): expires="),
        ("", "missing required line(s): account=, expires="),
        (GOOD + "max_notonal=5\n", "unknown key 'max_notonal'"),
        (GOOD + "account=U1\n", "account appears twice"),
        (GOOD + "just some words\n", "is not key=value"),
        (GOOD + "max_notional=-5\n", "must be a positive number"),
        (GOOD + "max_notional=lots\n", "is not a number"),
        (GOOD + "symbols= , \n", "symbols= is empty"),
        (GOOD + "max_notional=1000\n", "max_notional=1000"),  # 10 × 190 = 1900 > 1000
        (GOOD + "symbols=MSFT,TSLA\n", "not in the override file's symbols=MSFT,TSLA"),
    ],
)
def test_override_file_refusals(live: Any, text: str, fragment: str) -> None:
    write(live.path, text)
    assert fragment in refused_reason(live())


@pytest.mark.parametrize(
    "extra",
    [
        "max_notional=1900\n",
        "symbols=aapl, msft\n",
        "max_notional=10000  # per order\nsymbols=AAPL\n",
        "\n   \n# only comments\n",
    ],
)
def test_override_file_accepted_variants(live: Any, extra: str) -> None:
    write(live.path, GOOD + extra)
    assert live().allowed


def test_override_expires_accepts_z_and_other_offsets(live: Any) -> None:
    # NOW is 15:00 UTC: 09:00-05:00 is 14:00 UTC (expired), 11:00-05:00 is 16:00 UTC (valid).
    write(live.path, f"account={LIVE}\nexpires=2026-01-15T09:00:00-05:00\n")
    assert "expired" in refused_reason(live())
    write(live.path, f"account={LIVE}\nexpires=2026-01-15T11:00:00-05:00\n")
    assert live().allowed
    write(live.path, f"account={LIVE}\nexpires=2026-01-15T16:00:00Z\n")
    assert live().allowed


def test_override_removal_takes_effect_at_once(live: Any) -> None:
    write(live.path, GOOD)
    assert live().allowed
    live.path.unlink()
    assert "does not exist" in refused_reason(live())


def test_override_not_read_in_paper(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(LIVE_TRADING_OVERRIDE_FILE=tmp_path / "ov.txt")
    ctx = collect_facts(
        settings,
        build_intent(),
        mode="preview",
        managed_accounts=("DU1234567",),
        quote=None,
        tokens=TokenStore(60),
        token=None,
    )
    assert ctx.override is None
    assert ctx.now.tzinfo is not None


def test_read_override_file_reports_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "ov.txt", GOOD + "max_notional=10000\nsymbols=AAPL,MSFT\n")
    ov = read_override_file(path)
    assert (ov.exists, ov.owner_ok, ov.mode_ok, ov.error) == (True, True, True, None)
    assert ov.account == LIVE
    assert ov.expires is not None and ov.expires.isoformat() == "2026-01-15T18:00:00+00:00"
    assert str(ov.max_notional) == "10000"
    assert ov.symbols == ("AAPL", "MSFT")


def test_read_override_file_odd_files(tmp_path: Path) -> None:
    assert read_override_file(tmp_path / "nope.txt").exists is False
    assert read_override_file(tmp_path / "nope" / "deeper.txt").exists is False
    directory = read_override_file(tmp_path)
    assert directory.exists and directory.error is not None
    big = write(tmp_path / "big.txt", "#" * (70 * 1024))
    assert "larger than" in (read_override_file(big).error or "")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    os.chmod(binary, 0o600)
    assert read_override_file(binary).error == "not UTF-8 text"


def test_parse_override_text_strips_comments() -> None:
    assert parse_override_text("# c\nACCOUNT = U1 # trailing\n\nsymbols=A\n") == {
        "account": "U1",
        "symbols": "A",
    }
