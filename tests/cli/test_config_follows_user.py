"""Config follows the user: what `config show` prints is what a client-started server enforces."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from typer.testing import CliRunner

from ibkr_mcp.cli import app


def _json_text(result: Any) -> Any:
    return json.loads(result.contents[0].text)


@pytest.mark.slow
async def test_server_started_from_root_enforces_what_config_show_prints(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(
        f"IBKR_PORT={sim.port}\nORDERS_ENABLED=true\nMAX_ORDER_QUANTITY=5\nALLOWED_SYMBOLS=AAPL\n"
    )
    monkeypatch.chdir(project)
    runner = CliRunner()
    shown = runner.invoke(app, ["config", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    config = json.loads(shown.stdout)
    assert config["env_file"] == str(project / ".env")
    values, sources = config["values"], config["sources"]
    assert (values["MAX_ORDER_QUANTITY"], sources["MAX_ORDER_QUANTITY"]) == ("5", "file")
    assert (values["ALLOWED_SYMBOLS"], sources["ALLOWED_SYMBOLS"]) == ("AAPL", "file")
    assert sources["PRICE_BAND_PCT"] == "default"
    home = Path(os.environ["HOME"])
    data_dir = home / ".local" / "share" / "mm-ibkr-gateway"
    assert values["DATA_DIR"] == str(data_dir)
    assert values["AUDIT_DB_PATH"] == str(data_dir / "data" / "audit.db")

    installed = runner.invoke(app, ["install", "claude-desktop"])
    assert installed.exit_code == 0, installed.output
    entry = json.loads(installed.stdout)["mcpServers"]["ibkr"]
    assert entry["env"] == {"IBKR_MCP_ENV_FILE": str(project / ".env")}

    # What Claude Desktop does: start the command from elsewhere with only this environment
    # (plus the SDK's defaults such as HOME and PATH; no XDG variables).
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var)
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env=entry["env"], cwd="/"
    )
    stderr_log = tmp_path / "stderr.log"
    with stderr_log.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            policy = _json_text(await session.read_resource("ibkr://safety/policy"))
            assert str(policy["limits"]["max_order_quantity"]) == values["MAX_ORDER_QUANTITY"]
            assert policy["allowlists"]["symbols"] == ["AAPL"]
            assert policy["kill_switch"]["path"] == values["KILL_SWITCH_FILE"]
            order = {
                "side": "BUY",
                "order_type": "LMT",
                "limit_price": 100,
                "confirmation_token": "t" * 32,
            }
            too_many = await session.call_tool(
                "place_order",
                {**order, "symbol": "AAPL", "quantity": 6, "idempotency_key": "key-quantity"},
            )
            assert too_many.is_error
            assert "quantity" in too_many.content[0].text, too_many.content
            other_symbol = await session.call_tool(
                "place_order",
                {**order, "symbol": "MSFT", "quantity": 1, "idempotency_key": "key-symbol"},
            )
            assert other_symbol.is_error
            assert "allowlists" in other_symbol.content[0].text, other_symbol.content
            # A human who engages the kill switch at the path `config show` printed stops it.
            Path(values["KILL_SWITCH_FILE"]).parent.mkdir(parents=True, exist_ok=True)
            Path(values["KILL_SWITCH_FILE"]).touch()
            stopped = await session.call_tool(
                "place_order",
                {**order, "symbol": "AAPL", "quantity": 1, "idempotency_key": "key-kill-switch"},
            )
            assert stopped.is_error
            assert "kill_switch" in stopped.content[0].text, stopped.content
    # The broker received no order; the audit is where `config show` said, not in the cwd.
    assert [o for o in sim.orders() if not o.what_if] == []
    assert Path(values["AUDIT_DB_PATH"]).exists()
    assert not (project / "data").exists()
    log = stderr_log.read_text()
    assert f"config: env file {project / '.env'}" in log
    assert f"audit DB {values['AUDIT_DB_PATH']}" in log
    assert f"kill switch {values['KILL_SWITCH_FILE']}" in log
