"""Settings: safe defaults, validation, .env.example parity, path resolution."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from ibkr_mcp.config import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout


def test_defaults_are_safe() -> None:
    s = load_settings()
    assert s.TRADING_MODE == "paper"
    assert s.ORDERS_ENABLED is False
    assert s.IBKR_HOST == "127.0.0.1"
    assert s.IBKR_PORT == 4002
    assert s.IBKR_CLIENT_ID == 1
    assert s.API_HOST == "127.0.0.1"
    assert s.API_PORT == 8000
    assert s.API_TOKEN is None
    assert s.LOG_LEVEL == "INFO"
    assert s.AUDIT_DB_PATH == Path("data/audit.db")
    assert s.MAX_ORDER_QUANTITY == Decimal(1000)
    assert s.SIM_ACCOUNTS == ("DU1234567",)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TRADING_MODE", "live", "live"),
        ("ORDERS_ENABLED", "true", True),
        ("IBKR_PORT", "7497", 7497),
        ("ALLOWED_SYMBOLS", "aapl, msft", ("AAPL", "MSFT")),
        ("SIM_ACCOUNTS", "DU111,U222", ("DU111", "U222")),
        ("API_TOKEN", "", None),
        ("MAX_ORDER_NOTIONAL", "2500.50", Decimal("2500.50")),
    ],
)
def test_good_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(load_settings(), name) == expected


@pytest.mark.parametrize(
    ("name", "value", "must_mention"),
    [
        ("TRADING_MODE", "banana", "'paper' or 'live'"),
        ("IBKR_PORT", "70000", "65535"),
        ("IBKR_CLIENT_ID", "0", "greater than or equal to 1"),
        ("ORDERS_ENABLED", "maybe", "boolean"),
        ("LOG_LEVEL", "LOUD", "'INFO'"),
        ("SIM_ACCOUNTS", "XYZ", "not an IB account id"),
        ("MAX_ORDER_QUANTITY", "-5", "greater than 0"),
    ],
)
def test_bad_values_fail_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, must_mention: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Invalid setting {name}=")
    assert must_mention in message


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADING_MODE=live\nIBKR_PORT=4001\n")
    s = load_settings()
    assert (s.TRADING_MODE, s.IBKR_PORT) == ("live", 4001)


def test_env_example_lists_exactly_the_fields() -> None:
    text = (ROOT / ".env.example").read_text()
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    assert sorted(names) == sorted(Settings.model_fields)
    assert len(names) == len(set(names))
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            assert lines[i - 1].startswith("# "), f"{line} needs a comment above it"


def test_env_example_defaults_load(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    assert load_settings().model_dump() == load_settings(_env_file=None).model_dump()


def test_relative_paths_resolve_against_data_dir(tmp_path: Path) -> None:
    s = load_settings(DATA_DIR=tmp_path / "d")
    assert s.audit_db_path == (tmp_path / "d" / "data" / "audit.db").resolve()
    abs_path = tmp_path / "x.db"
    assert load_settings(AUDIT_DB_PATH=abs_path).audit_db_path == abs_path


def test_masked_hides_secrets() -> None:
    s = load_settings(API_TOKEN="s3cret-token")
    masked = s.masked()
    assert masked["API_TOKEN"] == "********"
    assert "s3cret-token" not in repr(masked)
    assert load_settings().masked()["API_TOKEN"] == "(unset)"


# --- Config resolution: one env file, data in the user data dir ---------------------------


def _user_config_file() -> Path:
    from ibkr_mcp.userdirs import user_config_file

    return user_config_file()


def test_exactly_one_env_file_is_read_first_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MAX_ORDER_QUANTITY=7\nIBKR_PORT=4001\n")
    assert load_settings().env_file == tmp_path / ".env"
    user = _user_config_file()
    assert str(user).startswith(str(Path.home()))  # the fixture's temporary HOME
    user.parent.mkdir(parents=True)
    user.write_text("MAX_ORDER_QUANTITY=5\n")
    s = load_settings()
    # The user config file wins and ./.env is not merged in (no IBKR_PORT from it).
    assert (s.env_file, s.MAX_ORDER_QUANTITY, s.IBKR_PORT) == (user, Decimal(5), 4002)
    named = tmp_path / "elsewhere.env"
    named.write_text("MAX_ORDER_QUANTITY=3\n")
    monkeypatch.setenv("IBKR_MCP_ENV_FILE", str(named))
    assert load_settings().MAX_ORDER_QUANTITY == Decimal(3)
    monkeypatch.setenv("MAX_ORDER_QUANTITY", "2")  # the environment overrides the file
    s = load_settings()
    assert s.MAX_ORDER_QUANTITY == Decimal(2)
    assert s.sources["MAX_ORDER_QUANTITY"] == "env"
    assert s.sources["IBKR_PORT"] == "default"


def test_cli_env_file_option_wins_and_missing_named_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ibkr_mcp import userdirs

    option = tmp_path / "option.env"
    option.write_text("ALLOWED_SYMBOLS=AAPL\n")
    monkeypatch.setenv("IBKR_MCP_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError, match=r"missing\.env \(from IBKR_MCP_ENV_FILE\) does not"):
        load_settings()
    userdirs.set_cli_env_file(option)
    s = load_settings()
    assert (s.env_file, s.ALLOWED_SYMBOLS) == (option, ("AAPL",))
    assert s.sources["ALLOWED_SYMBOLS"] == "file"


def test_data_lives_in_the_user_data_dir_never_the_cwd(tmp_path: Path) -> None:
    s = load_settings()
    data = Path.home() / ".local" / "share" / "mm-ibkr-gateway"
    assert s.DATA_DIR is None
    assert s.data_dir == data
    assert s.audit_db_path == data / "data" / "audit.db"
    assert s.kill_switch_path == data / "data" / "KILL_SWITCH"
    assert s.masked()["DATA_DIR"] == str(data)
    assert not str(s.audit_db_path).startswith(str(tmp_path / "data"))


def test_relative_data_dir_in_an_env_file_is_relative_to_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "my.env").write_text("DATA_DIR=state\n")
    monkeypatch.setenv("IBKR_MCP_ENV_FILE", str(project / "my.env"))
    monkeypatch.chdir("/")
    assert load_settings().audit_db_path == project / "state" / "data" / "audit.db"


def test_home_relative_paths_follow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Path resolution is cached for speed; `~` must still follow HOME (each test has its own).
    first = load_settings().live_override_path
    assert first == Path.home() / "ibkr_override.txt"
    other = tmp_path / "other-home"
    other.mkdir()
    monkeypatch.setenv("HOME", str(other))
    assert load_settings().live_override_path == other / "ibkr_override.txt"
    assert load_settings(DATA_DIR="~/d").audit_db_path == other / "d" / "data" / "audit.db"


def test_audit_safety_snapshot_is_encoded_once_per_settings_object(tmp_path: Path) -> None:
    import orjson

    from ibkr_mcp.audit._codec import to_json
    from ibkr_mcp.tools.registry import safety_snapshot

    first = load_settings(_env_file=None, DATA_DIR=tmp_path)
    text = safety_snapshot(first)
    assert text is not None
    # The same column text as encoding the snapshot on every row did (masked, sorted keys).
    assert to_json(text) == to_json(first.safety_snapshot())
    assert type(to_json(text)) is str  # a plain str reaches the database and the row hash
    assert safety_snapshot(first) is text
    # Settings are frozen; a changed copy is another object with its own snapshot.
    second = first.model_copy(update={"MAX_ORDER_QUANTITY": 7})
    assert orjson.loads(str(safety_snapshot(second)))["max_order_quantity"] == "7"
    assert (
        orjson.loads(str(text))["max_order_quantity"]
        == first.safety_snapshot()["max_order_quantity"]
    )


def test_a_misspelled_setting_in_the_env_file_is_refused(tmp_path: Path) -> None:
    env = tmp_path / "limits.env"
    env.write_text("MAX_ORDER_QUANTIY=5\nSOME_OTHER_TOOL=1\n")
    with pytest.raises(SettingsError, match="did you mean MAX_ORDER_QUANTITY"):
        load_settings(_env_file=env)
    env.write_text("max_order_quantity=5\n")  # read by nothing: as silent as a misspelling
    with pytest.raises(SettingsError, match="write MAX_ORDER_QUANTITY"):
        load_settings(_env_file=env)
    env.write_text("MAX_ORDER_QUANTITY=5\nSOME_OTHER_TOOL=1\n")  # names far from ours: fine
    assert load_settings(_env_file=env).MAX_ORDER_QUANTITY == 5


def test_the_example_env_file_names_only_settings() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    load_settings(_env_file=example)  # every name in it is a setting (or far from one)
