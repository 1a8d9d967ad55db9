"""``ibkr-mcp install``: absolute paths, DATA_DIR, and merging that keeps other servers."""

from __future__ import annotations

import json
import os
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


def test_claude_code_prints_mcp_add_in_local_scope(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["install", "claude-code"], env={"DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    words = shlex.split(result.stdout)
    assert words[:6] == ["claude", "mcp", "add", "--scope", "local", "ibkr"]
    assert words[-3:] == ["--", EXE, "serve"]
    assert f"DATA_DIR={tmp_path.resolve()}" in words


def _fake_claude(tmp_path: Path) -> tuple[Path, Path]:
    """A ``claude`` executable on a private PATH dir that records each argv as a JSON line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "claude-calls.jsonl"
    script = bin_dir / "claude"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(calls)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    return bin_dir, calls


def test_claude_code_write_uses_the_local_scope_not_a_shared_mcp_json(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("MAX_ORDER_QUANTITY=5\n")
    os.chdir(project)
    bin_dir, calls = _fake_claude(tmp_path)
    result = CliRunner().invoke(
        app,
        ["install", "claude-code", "--write"],
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.exit_code == 0, result.output
    assert "local scope" in result.stdout
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert argvs[0] == ["mcp", "remove", "--scope", "local", "ibkr"]
    add = argvs[1]
    assert add[:5] == ["mcp", "add", "--scope", "local", "ibkr"]
    assert add[add.index("-e") + 1] == f"IBKR_MCP_ENV_FILE={project / '.env'}"
    assert add[-3:] == ["--", EXE, "serve"]
    # Nothing machine-specific lands in the project (a .mcp.json is shared through git).
    assert not (project / ".mcp.json").exists()


def test_claude_code_write_without_claude_fails_and_prints_the_command(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = CliRunner().invoke(
        app, ["install", "claude-code", "--write"], env={"PATH": str(empty)}
    )
    assert result.exit_code == 1
    assert shlex.split(result.stdout)[:3] == ["claude", "mcp", "add"]
    assert not (tmp_path / ".mcp.json").exists()


def test_install_passes_the_env_file_read_not_its_values(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("MAX_ORDER_QUANTITY=5\nALLOWED_SYMBOLS=AAPL\n")
    os.chdir(project)
    result = CliRunner().invoke(app, ["install", "claude-desktop"], env={"IBKR_PORT": "4001"})
    assert result.exit_code == 0, result.output
    env = json.loads(result.stdout)["mcpServers"]["ibkr"]["env"]
    # The file by absolute path (edits to it apply on the next start), plus what came from
    # this shell's environment; the file's own values are not copied (they would override it).
    assert env == {"IBKR_MCP_ENV_FILE": str(project / ".env"), "IBKR_PORT": "4001"}


def test_install_from_uv_cache_writes_a_stable_command(tmp_path: Path) -> None:
    # This interpreter's environment stands in for an ephemeral `uvx` environment: uv may
    # delete its cache at any time, so the client must not be pointed into it.
    venv = Path(sys.executable).absolute().parent.parent
    result = CliRunner().invoke(
        app, ["install", "claude-desktop", "--sim"], env={"UV_CACHE_DIR": str(venv)}
    )
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["mcpServers"]["ibkr"]
    assert entry["command"] == "uvx"
    assert entry["args"] == ["--from", "mm-ibkr-gateway", "ibkr-mcp", "serve", "--sim"]
    assert "uv's cache" in result.stderr
    assert str(venv) not in result.stdout


def test_ephemeral_detection() -> None:
    from ibkr_mcp.cli.install import is_ephemeral, server_command

    cached = Path("/home/u/.cache/uv/archive-v0/Xy12/bin/ibkr-mcp")
    assert is_ephemeral(cached)
    assert server_command(cached) == ["uvx", "--from", "mm-ibkr-gateway", "ibkr-mcp"]
    stable = Path("/home/u/.local/share/pipx/venvs/mm-ibkr-gateway/bin/ibkr-mcp")
    assert not is_ephemeral(stable)
    assert server_command(stable) == [str(stable)]
