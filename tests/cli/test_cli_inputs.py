"""Bad input on the command line: one line naming the option or file, exit 2, never a traceback.

JSON options (``option-quotes --contracts``), audit paths, ``start-api`` ports, env files that
are not UTF-8 or are directories, and declined prompts (CONFIRMATION_REQUIRED, exit 3).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ibkr_mcp.cli import app
from ibkr_mcp.cli.json_args import json_kind
from ibkr_mcp.cli.tools import _unwrap
from ibkr_mcp.tools import build_registry

EXE = str(Path(sys.executable).with_name("ibkr-mcp"))
#: The README's example, verbatim.
CONTRACTS = '[{"symbol":"AAPL","expiry":"20261218","strike":220,"right":"C"}]'
CALL = '{"symbol":"AAPL","expiry":"20261218","strike":220,"right":"C"}'
PUT = '{"symbol":"AAPL","expiry":"20261218","strike":"225","right":"P"}'


def _invoke(tmp_path: Path, *args: str, stdin: str | None = None) -> typing.Any:
    return CliRunner().invoke(app, list(args), env={"DATA_DIR": str(tmp_path)}, input=stdin)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "DATA_DIR": str(tmp_path), "COLUMNS": "200"},
    )


def _one_line_usage(result: typing.Any, *needles: str) -> None:
    """Exit 2, every needle in the message, no traceback."""
    text = " ".join((result.stderr if hasattr(result, "stderr") else result.output).split())
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    assert code == 2, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Traceback" not in text
    assert getattr(result, "exception", None) is None or isinstance(result.exception, SystemExit)


# --- JSON options -------------------------------------------------------------------------------


def test_option_quotes_takes_the_readme_form_and_one_object_per_option(tmp_path: Path) -> None:
    array = _invoke(tmp_path, "option-quotes", "--contracts", CONTRACTS, "--sim", "--json")
    assert array.exit_code == 0, array.output
    quotes = json.loads(array.stdout)["quotes"]
    assert [(q["strike"], q["right"]) for q in quotes] == [(220, "C")]
    assert quotes[0]["quote"]["symbol"] == "AAPL"
    repeated = _invoke(
        tmp_path, "option-quotes", "--contracts", CALL, "--contracts", PUT, "--sim", "--json"
    )
    assert repeated.exit_code == 0, repeated.output
    got = [(q["strike"], q["right"]) for q in json.loads(repeated.stdout)["quotes"]]
    assert got == [(220, "C"), (225, "P")]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ('[{"symbol":', "not valid JSON"),
        ("AAPL 220 C", "not valid JSON"),
        ("42", "got a number"),
        ('"AAPL"', "got a string"),
    ],
)
def test_bad_json_is_a_usage_error_naming_the_option(
    tmp_path: Path, value: str, needle: str
) -> None:
    # No --sim and no gateway: the option is refused before anything connects.
    result = _invoke(tmp_path, "option-quotes", "--contracts", value)
    _one_line_usage(result, "--contracts", needle)


def test_bad_json_with_json_output_is_the_error_object(tmp_path: Path) -> None:
    result = _run(tmp_path, "option-quotes", "--contracts", "{oops", "--json")
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "INVALID_INPUT" and "--contracts" in error["message"]


def test_an_incomplete_contract_names_its_fields(tmp_path: Path) -> None:
    result = _invoke(tmp_path, "option-quotes", "--contracts", '[{"symbol":"AAPL"}]', "--sim")
    assert result.exit_code == 2, result.output
    for field in ("contracts.0.expiry", "contracts.0.strike", "contracts.0.right"):
        assert field in result.stderr


def test_every_object_field_is_a_json_option() -> None:
    """Any tool field holding a model or dict (or a list of them) is decoded as JSON."""
    commands = get_command(app).commands  # type: ignore[attr-defined]
    found = []
    for spec in build_registry().enabled({"read", "trade"}, "cli"):
        params = {p.name: p for p in commands[spec.cli_name].params}
        for name, field in spec.input_model.model_fields.items():
            if name not in params or json_kind(_unwrap(field.annotation)[0]) is None:
                continue
            found.append(spec.cli_name)
            assert params[name].metavar == "JSON", (spec.cli_name, name)
            assert "JSON" in (getattr(params[name], "help", "") or ""), (spec.cli_name, name)
    assert "option-quotes" in found


# --- audit paths --------------------------------------------------------------------------------


def test_audit_output_paths_are_checked(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    missing = tmp_path / "no-such-dir" / "x.jsonl"
    for flag, cmd in (("-o", "export"), ("--output", "anchor")):
        _one_line_usage(_invoke(tmp_path, "audit", cmd, flag, str(missing)), "does not exist")
        _one_line_usage(_invoke(tmp_path, "audit", cmd, flag, str(tmp_path)), "is a directory")
        _one_line_usage(
            _invoke(tmp_path, "audit", cmd, flag, str(a_file / "x")), "is not a directory"
        )
    assert not missing.parent.exists()  # a typo creates nothing
    _one_line_usage(_invoke(tmp_path, "audit", "backup", str(tmp_path)), "is a directory")
    _one_line_usage(_invoke(tmp_path, "audit", "backup", str(a_file / "x.db")), "a parent")


def test_audit_input_paths_are_checked(tmp_path: Path) -> None:
    _one_line_usage(_invoke(tmp_path, "audit", "verify", "--db", str(tmp_path)), "--db")
    _one_line_usage(
        _invoke(tmp_path, "audit", "verify", "--key", str(tmp_path / "nokey")),
        "--key",
        "does not exist",
    )
    _one_line_usage(
        _invoke(tmp_path, "audit", "verify", "--key", str(tmp_path)), "--key", "is a directory"
    )


# --- start-api ----------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_start_api_refuses_a_port_out_of_range(tmp_path: Path, port: str) -> None:
    _one_line_usage(_invoke(tmp_path, "start-api", "--port", port), "--port")


def test_start_api_names_a_port_in_use_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _run(tmp_path, "start-api", "--port", str(port))
    _one_line_usage(result, f"127.0.0.1:{port}", "in use")


# --- env files ----------------------------------------------------------------------------------


def test_env_file_not_utf8_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bin.env"
    env_file.write_bytes(b"\xff\xfe garbage\n")
    for args in (
        ("--env-file", str(env_file), "config", "show"),
        ("--env-file", str(env_file), "quote", "AAPL"),
    ):
        _one_line_usage(_run(tmp_path, *args), str(env_file), "not UTF-8")
    latin = tmp_path / "latin.env"
    latin.write_bytes(b"ORDERS_ENABLED=false\nLOG_LEVEL=caf\xe9\n")
    _one_line_usage(_run(tmp_path, "--env-file", str(latin), "config", "show"), "line 2")


def test_env_file_that_is_a_directory_says_so(tmp_path: Path) -> None:
    result = _run(tmp_path, "--env-file", str(tmp_path), "config", "show")
    _one_line_usage(result, str(tmp_path), "is a directory")
    assert "does not exist" not in result.stderr


# --- prompts and emergency-stop --json ----------------------------------------------------------


def test_declining_clear_is_confirmation_required_like_place(tmp_path: Path) -> None:
    stop = _invoke(tmp_path, "emergency-stop", "--sim", "--json")
    assert stop.exit_code == 0, stop.output
    data = json.loads(stop.stdout)
    assert data["halted"] is True and data["cancel_error"] is None
    for answer in ("n\n", ""):  # "no", and end of input
        declined = _invoke(tmp_path, "emergency-stop", "--clear", stdin=answer)
        assert declined.exit_code == 3, declined.output
        assert "CONFIRMATION_REQUIRED" in declined.stderr and "halt stays" in declined.stderr
    unasked = _invoke(tmp_path, "emergency-stop", "--clear", "--json")
    assert unasked.exit_code == 3, unasked.output
    error = json.loads(unasked.stdout)["error"]
    assert error["code"] == "CONFIRMATION_REQUIRED" and "--yes" in error["remedy"]
    cleared = _invoke(tmp_path, "emergency-stop", "--clear", "--json", "--yes")
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(cleared.stdout)["cleared"] is True
    again = _invoke(tmp_path, "emergency-stop", "--clear", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["cleared"] is False
