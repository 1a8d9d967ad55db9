"""CLI skeleton: --help is fast and light, --version, config show masks secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ibkr_mcp import __version__
from ibkr_mcp.cli import app

HEAVY = ("fastmcp", "fastapi", "ib_async")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    env.update(PATH=os.environ.get("PATH", ""), HOME=os.environ.get("HOME", "/root"))
    env.update(extra)
    return env


def test_help_imports_no_heavy_module(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ibkr_mcp.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='ibkr-mcp')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert "HEAVY=\n" in proc.stderr or proc.stderr.rstrip().endswith("HEAVY="), proc.stderr
    assert "Usage" in proc.stdout


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_gateway_script_without_command_prints_help(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ibkr-gateway")
    proc = subprocess.run(
        [str(exe)], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_env(tmp_path)
    )
    assert proc.returncode == 0
    assert "Usage" in proc.stdout
    assert "config" in proc.stdout


def test_config_show_masks_token_and_resolves_paths(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["config", "show", "--json"],
        env={"API_TOKEN": "very-secret-value", "DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["values"]
    assert data["API_TOKEN"] == "********"
    assert "very-secret-value" not in result.stdout
    assert data["AUDIT_DB_PATH"] == str((tmp_path / "data" / "audit.db").resolve())
    table = runner.invoke(app, ["config", "show"], env={"API_TOKEN": "very-secret-value"})
    assert table.exit_code == 0
    assert "very-secret-value" not in table.stdout
    assert "TRADING_MODE" in table.stdout


def test_invalid_setting_stops_with_one_line(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ibkr-mcp")
    proc = subprocess.run(
        [str(exe), "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_env(tmp_path, TRADING_MODE="banana"),
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "TRADING_MODE='banana'" in proc.stderr
    assert "'paper' or 'live'" in proc.stderr


def test_env_file_option_and_config_show_sources(tmp_path: Path) -> None:
    env_file = tmp_path / "limits.env"
    env_file.write_text("MAX_ORDER_QUANTITY=5\nORDERS_ENABLED=true\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["--env-file", str(env_file), "config", "show", "--json"],
        env={"ORDERS_ENABLED": "false"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["env_file"] == str(env_file)
    assert (data["values"]["MAX_ORDER_QUANTITY"], data["sources"]["MAX_ORDER_QUANTITY"]) == (
        "5",
        "file",
    )
    assert (data["values"]["ORDERS_ENABLED"], data["sources"]["ORDERS_ENABLED"]) == ("false", "env")
    assert data["sources"]["IBKR_PORT"] == "default"
    table = runner.invoke(app, ["--env-file", str(env_file), "config", "show"])
    assert f"Env file: {env_file}" in table.stdout
    assert "mm-ibkr-gateway/.env, ./.env" in table.stdout
    missing = runner.invoke(app, ["--env-file", str(tmp_path / "nope.env"), "config", "show"])
    assert missing.exit_code == 2
    assert "nope.env (from --env-file) does not exist" in missing.stderr
