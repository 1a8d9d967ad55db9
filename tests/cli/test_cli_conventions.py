"""CLI conventions: JSON errors on stdout, healthcheck --json, exit codes documented, quiet logs."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ibkr_mcp.cli import app
from ibkr_mcp.cli.common import EXIT_INTERRUPTED
from ibkr_mcp.errors import CLI_EXIT_CODE

EXE = str(Path(sys.executable).with_name("ibkr-mcp"))
README = Path(__file__).resolve().parents[2] / "README.md"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "DATA_DIR": str(tmp_path), "COLUMNS": "160", **env},
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_json_errors_are_the_error_object_on_stdout(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DATA_DIR": str(tmp_path)}
    missing = runner.invoke(app, ["quote", "ZZZZQ", "--sim", "--json"], env=env)
    assert missing.exit_code == 4
    error = json.loads(missing.stdout)["error"]
    assert error["code"] == "CONTRACT_NOT_FOUND"
    assert error["message"] and error["remedy"]
    assert error["details"]["correlation_id"]
    invalid = runner.invoke(
        app, ["bars", "SPY", "--duration", "banana", "--sim", "--json"], env=env
    )
    assert invalid.exit_code == 2
    error = json.loads(invalid.stdout)["error"]
    assert error["code"] == "INVALID_INPUT"
    assert error["details"]["errors"][0]["field"] == "duration"
    bad_setting = runner.invoke(
        app, ["quote", "AAPL", "--json"], env={**env, "TRADING_MODE": "banana"}
    )
    assert bad_setting.exit_code == 2
    error = json.loads(bad_setting.stdout)["error"]
    assert error["code"] == "INVALID_INPUT" and "TRADING_MODE" in error["message"]
    shown = runner.invoke(app, ["config", "show", "--json"], env={"TRADING_MODE": "banana"})
    assert shown.exit_code == 2
    assert json.loads(shown.stdout)["error"]["details"] == {"source": "settings"}


def test_healthcheck_json(tmp_path: Path) -> None:
    ready = _run(tmp_path, "healthcheck", "--sim", "--json")
    assert ready.returncode == 0, ready.stderr
    data = json.loads(ready.stdout)
    assert data["ready"] is True and data["connected"] is True
    assert data["accounts"] == ["DU1234567"]
    assert data["summary"] == "System ready (paper mode, orders disabled)"
    refused = _run(tmp_path, "healthcheck", "--json", "--timeout", "5", IBKR_PORT=str(_free_port()))
    assert refused.returncode == 7, refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "GATEWAY_UNAVAILABLE"
    assert "start IB Gateway or TWS" in error["remedy"]


def _documented(text: str) -> dict[int, str]:
    """``{exit code: names}`` from the ``Exit codes: 0 success; 1 …; 130 …`` sentence."""
    match = re.search(r"Exit codes: (.*?)\.(?:\s|$)", " ".join(text.split()))
    assert match, text
    out: dict[int, str] = {}
    for part in match.group(1).split("; "):
        number, names = part.split(" ", 1)
        out[int(number)] = names
    return out


def _expected() -> dict[int, set[str]]:
    expected: dict[int, set[str]] = {0: set(), EXIT_INTERRUPTED: set()}
    for code, number in CLI_EXIT_CODE.items():
        expected.setdefault(number, set()).add(code)
    return expected


def test_exit_codes_are_documented_in_help_and_readme() -> None:
    expected = _expected()
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400"}).stdout
    quote_help = CliRunner().invoke(app, ["quote", "--help"], env={"COLUMNS": "400"}).stdout
    readme_rows = dict(
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^\| `(\d+)` \| (.*?) \|$", README.read_text(), re.MULTILINE)
    )
    for documented in (_documented(help_text), _documented(quote_help), readme_rows):
        assert set(documented) == set(expected), documented
        for number, codes in expected.items():
            for code in codes:
                assert code in documented[number], (number, code, documented[number])


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["quote", "AAPL", "--sim"], 0),
        (["bars", "SPY", "--duration", "banana", "--sim"], 2),
        (["quote", "ZZZZQ", "--sim"], 4),
        (
            [
                "place", "AAPL", "BUY", "1", "--order-type", "MKT", "--confirmation-token",
                "not-a-real-token", "--idempotency-key", "cli-exit-0003", "--sim",
            ],
            3,
        ),
    ],
)  # fmt: skip
def test_exit_codes_as_documented(tmp_path: Path, args: list[str], code: int) -> None:
    result = CliRunner().invoke(app, args, env={"DATA_DIR": str(tmp_path)})
    assert result.exit_code == code, result.output
    if code:
        name = result.stderr.split(":", 1)[0].removeprefix("✗ ")
        assert name in _documented(CliRunner().invoke(app, ["--help"]).stdout)[code]


def test_unavailable_gateway_exits_7_with_json(tmp_path: Path) -> None:
    result = _run(
        tmp_path, "quote", "AAPL", "--json", IBKR_PORT=str(_free_port()), IBKR_CONNECT_TIMEOUT="1"
    )
    assert result.returncode == 7, result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "GATEWAY_UNAVAILABLE"


def test_spinner_while_connecting_and_no_ib_async_lines(tmp_path: Path) -> None:
    # TTY_COMPATIBLE=1 makes Rich treat stderr as a terminal (as a person's shell is).
    terminal = {"TTY_COMPATIBLE": "1"}
    check = _run(tmp_path, "healthcheck", "--sim", **terminal)
    assert check.returncode == 0, check.stderr
    assert "Connecting to the embedded simulator…" in check.stderr
    # Unknown symbols make ib_async log "Error 200 …" itself; the command already says it.
    for args in (["quote", "ZZZZQ", "--sim"], ["bars", "SPY", "ZZZZQ", "--sim"]):
        result = _run(tmp_path, *args, **terminal)
        assert result.returncode == 4, result.stderr
        assert "CONTRACT_NOT_FOUND" in result.stderr
        assert "Error 200" not in result.stderr + result.stdout
        assert "ib_async" not in result.stderr + result.stdout
    debug = _run(tmp_path, "quote", "ZZZZQ", "--sim", LOG_LEVEL="DEBUG")
    assert "Error 200" in debug.stderr  # still there for whoever asks


def test_usage_errors_with_json_are_json_too(tmp_path: Path) -> None:
    for args, needle in (
        (["quote", "--json"], "symbol"),
        (["quote", "A", "--bogus", "--json"], "--bogus"),
    ):
        result = _run(tmp_path, *args)
        assert result.returncode == 2, result.stderr
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "INVALID_INPUT" and needle in error["message"]
        assert needle in result.stderr
    plain = _run(tmp_path, "quote")
    assert plain.returncode == 2 and plain.stdout == ""  # without --json: Typer's usage text


def test_audit_tail_json_failure_is_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_text("not a database")
    result = CliRunner().invoke(app, ["audit", "tail", "--json", "--db", str(broken)])
    assert result.exit_code == 9, result.output
    assert json.loads(result.stdout)["error"]["code"] == "AUDIT_UNAVAILABLE"
