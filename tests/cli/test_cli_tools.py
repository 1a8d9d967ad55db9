"""Generated tool commands through Typer's CliRunner (each command runs its own --sim)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ibkr_mcp.cli import app
from ibkr_mcp.tools import build_registry


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), env={"DATA_DIR": str(tmp_path)})

    return invoke


def test_one_command_per_tool() -> None:
    group = get_command(app)
    names = set(group.commands)  # type: ignore[attr-defined]
    cli_names = {spec.cli_name for spec in build_registry().enabled({"read", "trade"}, "cli")}
    assert len(cli_names) == 21
    assert cli_names <= names
    # Admin tools are MCP-only; the CLI has its own human commands for them.
    assert not {n for n in names if n.startswith("admin-")}
    assert {"emergency-stop", "approvals"} <= names
    for extra in ("healthcheck", "demo", "sim", "serve", "start-api", "audit", "install"):
        assert extra in names


def test_quote_json_parses_back(run) -> None:  # type: ignore[no-untyped-def]
    result = run("quote", "aapl", "--sim", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["symbol"] == "AAPL"
    assert data["market_data_type"] in ("live", "delayed", "frozen", "delayed_frozen")
    assert float(data["ask"]) >= float(data["bid"]) > 0


def test_positions_json_parses_back(run) -> None:  # type: ignore[no-untyped-def]
    result = run("positions", "--sim", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["account"] == "DU1234567"
    assert isinstance(data["positions"], list)


def test_quotes_and_bars_take_several_symbols(run) -> None:  # type: ignore[no-untyped-def]
    quotes = run("quotes", "AAPL,MSFT", "SPY", "--sim", "--json")
    assert quotes.exit_code == 0, quotes.output
    assert [q["symbol"] for q in json.loads(quotes.stdout)["quotes"]] == ["AAPL", "MSFT", "SPY"]
    bars = run("bars", "SPY", "QQQ", "--duration", "5 D", "--bar-size", "1 day", "--sim", "--json")
    assert bars.exit_code == 0, bars.output
    data = json.loads(bars.stdout)
    assert [d["symbol"] for d in data] == ["SPY", "QQQ"]
    assert all(len(d["bars"]) == 5 for d in data)


def test_rich_table_output(run) -> None:  # type: ignore[no-untyped-def]
    result = run("bars", "SPY", "--sim")
    assert result.exit_code == 0, result.output
    assert "Bars" in result.stdout and "Close" in result.stdout and "SPY" in result.stdout
    status = run("status", "--sim")
    assert status.exit_code == 0, status.output
    assert "System ready (paper mode, orders disabled)" in status.stdout


def test_errors_map_to_exit_codes_without_traceback(run) -> None:  # type: ignore[no-untyped-def]
    missing = run("quote", "ZZZZQ", "--sim")
    assert missing.exit_code == 4
    assert "CONTRACT_NOT_FOUND" in missing.stderr
    assert "Remedy:" in missing.stderr
    assert "Traceback" not in missing.output
    invalid = run("bars", "SPY", "--duration", "banana", "--sim")
    assert invalid.exit_code == 2
    assert "INVALID_INPUT" in invalid.stderr and "duration" in invalid.stderr
    unknown = run("order-status", "999999", "--sim")
    assert unknown.exit_code == 4
    assert "ORDER_NOT_FOUND" in unknown.stderr


def test_dry_run_place_is_refused_without_token(run) -> None:  # type: ignore[no-untyped-def]
    # Tokens live in the issuing process, so a token from another CLI run is unknown: the
    # confirmation gate refuses (exit 3) and nothing is sent.
    result = run(
        "place",
        "AAPL",
        "BUY",
        "1",
        "--order-type",
        "MKT",
        "--confirmation-token",
        "not-a-real-token",
        "--idempotency-key",
        "cli-test-0001",
        "--sim",
    )
    assert result.exit_code == 3, result.output
    assert "GATE_REFUSED" in result.stderr or "CONFIRMATION" in result.stderr


def test_generated_command_help_imports_nothing_heavy(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ibkr_mcp.cli import app\n"
        "try:\n"
        "    app(['bars', '--help'], prog_name='ibkr-mcp')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('fastmcp', 'fastapi', 'ib_async', 'uvicorn', 'httpx')\n"
        "print('HEAVY=' + ','.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.stderr.rstrip().endswith("HEAVY="), proc.stderr
    assert "--bar-size" in proc.stdout and "--sim" in proc.stdout and "--json" in proc.stdout


def test_place_previews_and_confirms_in_one_run(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DATA_DIR": str(tmp_path)}
    args = ["place", "AAPL", "BUY", "1", "--order-type", "MKT", "--idempotency-key"]
    declined = runner.invoke(app, [*args, "cli-test-0002", "--sim"], env=env, input="n\n")
    assert declined.exit_code == 3, declined.output
    assert "Not confirmed" in declined.stderr
    no_input = runner.invoke(app, [*args, "cli-test-0004", "--sim"], env=env, input="")
    assert no_input.exit_code == 3, no_input.output  # end of input is not a yes
    bad_key = runner.invoke(app, [*args, "x", "--sim"], env=env, input="y\n")
    assert bad_key.exit_code == 2
    assert "idempotency_key" in bad_key.stderr
    assert "Place this order?" not in bad_key.output  # refused before any preview
    accepted = runner.invoke(app, [*args, "cli-test-0003", "--sim", "--json", "--yes"], env=env)
    assert accepted.exit_code == 0, accepted.output
    data = json.loads(accepted.stdout)
    # Orders are disabled by default: the full chain ran, nothing was sent.
    assert (data["status"], data["sent"]) == ("SIMULATED", False)
