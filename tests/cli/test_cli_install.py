"""``ibkr-mcp install``: absolute paths, DATA_DIR, and merging that keeps other servers."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from typer.testing import CliRunner

from ibkr_mcp.cli import app

EXE = str(Path(sys.executable).absolute().with_name("ibkr-mcp"))


def test_desktop_prints_absolute_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["install", "claude-desktop"], env={"DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["mcpServers"]["ibkr"]
    assert entry["command"] == EXE and Path(entry["command"]).is_absolute()
    assert Path(entry["command"]).exists()
    assert entry["args"] == ["serve"]
    assert entry["env"]["DATA_DIR"] == str(tmp_path.resolve())
    assert Path(entry["env"]["DATA_DIR"]).is_absolute()


def test_desktop_write_merges_and_keeps_other_servers(tmp_path: Path) -> None:
    config = tmp_path / "claude" / "claude_desktop_config.json"
    config.parent.mkdir()
    other = {"command": "/usr/bin/other", "args": ["x"]}
    config.write_text(json.dumps({"mcpServers": {"other": other}, "theme": "dark"}))
    config.chmod(0o600)  # it may hold other servers' secrets
    result = CliRunner().invoke(
        app,
        ["install", "claude-desktop", "--sim", "--write", "--config", str(config)],
        env={"DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(config.read_text())
    assert data["theme"] == "dark"
    assert data["mcpServers"]["other"] == other
    assert data["mcpServers"]["ibkr"]["args"] == ["serve", "--sim"]
    assert data["mcpServers"]["ibkr"]["command"] == EXE
    backup = config.with_name(config.name + ".bak")
    assert json.loads(backup.read_text())["theme"] == "dark"
    assert config.stat().st_mode & 0o777 == 0o600
    assert backup.stat().st_mode & 0o777 == 0o600
    assert "other" in result.stdout


def test_desktop_write_refuses_broken_json(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    result = CliRunner().invoke(
        app,
        ["install", "claude-desktop", "--write", "--config", str(config)],
        env={"DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert config.read_text() == "{not json"


def test_claude_code_prints_mcp_add_and_writes_project_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["install", "claude-code"], env={"DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    words = shlex.split(result.stdout)
    assert words[:4] == ["claude", "mcp", "add", "ibkr"]
    assert words[-3:] == ["--", EXE, "serve"]
    assert f"DATA_DIR={tmp_path.resolve()}" in words
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"keep": {"command": "k"}}}))
    written = runner.invoke(
        app, ["install", "claude-code", "--write"], env={"DATA_DIR": str(tmp_path)}
    )
    assert written.exit_code == 0, written.output
    data = json.loads((tmp_path / ".mcp.json").read_text())
    assert data["mcpServers"]["keep"] == {"command": "k"}
    assert data["mcpServers"]["ibkr"]["type"] == "stdio"
    assert data["mcpServers"]["ibkr"]["command"] == EXE
