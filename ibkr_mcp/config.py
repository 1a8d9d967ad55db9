"""Settings: one pydantic ``BaseSettings`` from the environment and one env file, safe defaults."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TradingMode = Literal["paper", "live"]
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
MarketDataPolicy = Literal["live", "frozen", "delayed", "delayed_frozen", "live_or_delayed"]

#: Field names whose values are secrets: masked by ``config show`` and never logged.
SECRET_FIELDS = frozenset({"API_TOKEN"})
#: Simulator drills: which market data subscription a symbol lacks (as in simulator.limits).
SimGapKind = Literal["none", "api", "partial", "partial-api"]
GAP_KINDS: tuple[SimGapKind, ...] = ("none", "api", "partial", "partial-api")


def _split_csv(value: object) -> object:
    """Accept ``"A,B , C"`` (how people write lists in ``.env``) as well as real lists."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Every configuration value of the server; names match the runbook, with no prefix.

    Defaults are the safe ones: paper trading, orders disabled, loopback binding, finite limits.
    """

    model_config = SettingsConfigDict(
        # No implicit file: load_settings() picks the one env file (see ibkr_mcp/userdirs.py).
        env_file=None,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=True,
    )

    # --- Trading safety -------------------------------------------------------------------
    TRADING_MODE: TradingMode = Field("paper", description="paper or live; must match account.")
    ORDERS_ENABLED: bool = Field(False, description="false: place_order is a dry run.")
    LIVE_TRADING_OVERRIDE_FILE: Path = Field(
        Path("~/ibkr_override.txt"), description="Live-trading override file (live mode only)."
    )
    KILL_SWITCH_FILE: Path = Field(
        Path("data/KILL_SWITCH"), description="While this file exists every new order is refused."
    )
    MAX_ORDER_QUANTITY: Decimal = Field(Decimal(1000), gt=0, description="Max shares per order.")
    MAX_ORDER_NOTIONAL: Decimal = Field(
        Decimal(50000), gt=0, description="Max order value in the order's currency."
    )
    PRICE_BAND_PCT: Decimal = Field(
        Decimal(5), gt=0, le=100, description="Allowed distance of prices from the quote, percent."
    )
    ALLOW_MKT_ON_DELAYED_QUOTES: bool = Field(
        False, description="true: MKT orders may be bounded by delayed/frozen quotes."
    )
    ALLOWED_SYMBOLS: CsvList = Field((), description="Comma list; empty allows every symbol.")
    ALLOWED_SEC_TYPES: CsvList = Field(("STK",), description="Comma list of security types.")
    ALLOWED_CURRENCIES: CsvList = Field(("USD",), description="Comma list of currencies.")
    CONFIRMATION_TOKEN_TTL_SECONDS: int = Field(
        120, ge=5, le=3600, description="Lifetime of a preview's confirmation token."
    )

    # --- Trading controls (issue 14): flow limits, halts, approval, toolsets, keyed audit --
    MAX_ORDERS_PER_MINUTE: int = Field(
        10, ge=1, le=10_000, description="Orders sent per rolling minute (all processes)."
    )
    MAX_ORDERS_PER_DAY: int = Field(
        200, ge=1, le=1_000_000, description="Orders sent per New York trading day."
    )
    MAX_DAILY_NOTIONAL: Decimal = Field(
        Decimal(250000), gt=0, description="Value sent per account and currency per day."
    )
    DUPLICATE_ORDER_WINDOW_SECONDS: int = Field(
        30, ge=0, le=86400, description="Same order under a new key within this is refused."
    )
    MAX_REJECTIONS: int = Field(
        3, ge=1, le=1000, description="Broker rejections in the window that halt trading."
    )
    REJECTION_WINDOW_MINUTES: int = Field(
        5, ge=1, le=1440, description="Window of the rejection breaker, minutes."
    )
    MAX_DAILY_LOSS: Decimal | None = Field(
        None, gt=0, description="Day loss that blocks exposure-increasing orders (empty: off)."
    )
    MAX_POSITION_PCT_OF_NET_LIQ: Decimal | None = Field(
        None, gt=0, le=1000, description="Max position value, percent of net liq (empty: off)."
    )
    ALLOW_SHORT: bool = Field(False, description="true: a SELL may exceed the position held.")
    TRADING_HOURS_ONLY: bool | None = Field(
        None, description="Refuse orders outside the session (empty: true live, false paper)."
    )
    HALT_STATE_FILE: Path = Field(
        Path("data/halt.json"), description="Persisted emergency stop / breaker halt state."
    )
    REQUIRE_APPROVAL: Literal["never", "live", "always"] = Field(
        "live", description="Human approval before sending: never, live or always."
    )
    APPROVAL_TTL_SECONDS: int = Field(
        900, ge=10, le=86400, description="A pending approval expires after this many seconds."
    )
    CLI_CLIENT_ID_OFFSET: int = Field(
        100, ge=1, le=10_000, description="CLI broker commands use IBKR_CLIENT_ID plus this."
    )
    TOOLSETS: CsvList = Field(("read", "trade"), description="Enabled toolsets: read,trade,admin.")
    READ_ONLY: bool = Field(False, description="true: shorthand for TOOLSETS=read.")
    AUDIT_KEY_FILE: Path = Field(
        Path("data/audit.key"), description="HMAC key of the audit chain (created 0600)."
    )

    # --- Broker connection ----------------------------------------------------------------
    IBKR_HOST: str = Field("127.0.0.1", min_length=1, description="IB Gateway / TWS host.")
    IBKR_PORT: int = Field(4002, ge=1, le=65535, description="IB Gateway / TWS API port.")
    IBKR_CLIENT_ID: int = Field(1, ge=1, le=2**31 - 1, description="API client id (never 0).")
    IBKR_CONNECT_TIMEOUT: float = Field(
        5.0, gt=0, le=120, description="Seconds to wait for one connection attempt."
    )
    IBKR_REQUEST_TIMEOUT: float = Field(
        10.0, gt=0, le=300, description="Seconds to wait for one broker request."
    )
    MARKET_DATA_TYPE: MarketDataPolicy = Field(
        "live_or_delayed", description="Market data type policy."
    )
    QUOTE_CACHE_SECONDS: float = Field(
        0.0,
        ge=0,
        le=60,
        description="Reuse a quote this many seconds (0 disables); one asked for past 3/4 of "
        "that is refreshed in the background while it is still served.",
    )
    ORDER_BOOK_REFRESH_SECONDS: float = Field(
        0.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Reread the day's completed orders whole in the background this often "
        "(0: never; order calls follow events, open orders and new executions).",
    )
    ORDER_BOOK_WHOLE_READS: bool = Field(
        False,
        description="Order calls read every order and execution of the day from the broker "
        "(strictest view of other clients; cost and memory grow with the day's orders).",
    )
    HEAP_TRIM_SECONDS: float = Field(
        30.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Hand memory the process freed back to the OS this often (glibc "
        "malloc_trim, in a thread; 0: never).",
    )

    # --- Connection supervisor (liveness, reconnect, market-data load) ------------------------
    IBKR_LIVENESS_SECONDS: float = Field(
        10.0,
        ge=1,
        allow_inf_nan=False,
        description="Probe the gateway after this many silent seconds.",
    )
    IBKR_LIVENESS_PROBE_TIMEOUT: float = Field(
        2.0, gt=0, le=60, description="A probe unanswered this long: state hung."
    )
    IBKR_RECONNECT_FAST_WINDOW_SECONDS: float = Field(
        600.0, ge=0, le=86400, description="Retry every 0.5 s this long after a loss, then 5 s."
    )
    MARKET_DATA_MAX_INFLIGHT: int = Field(
        50, ge=1, le=1000, description="Snapshot quote requests open at the gateway at once."
    )
    MARKET_DATA_MAX_CALLS: int = Field(
        100, ge=1, le=100_000, description="Quote calls served at once; more get OVERLOADED."
    )
    MARKET_DATA_MESSAGES_PER_SECOND: float = Field(
        40.0, gt=0, le=45, description="Market-data requests per second (orders keep the rest)."
    )

    # --- HTTP API ---------------------------------------------------------------------------
    API_HOST: str = Field("127.0.0.1", min_length=1, description="HTTP bind address.")
    API_PORT: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    API_TOKEN: SecretStr | None = Field(None, description="Bearer token for /api and /mcp.")
    API_MAX_BODY_BYTES: int = Field(
        65536, ge=1024, le=10_000_000, description="Largest accepted request body."
    )

    # --- Logging, files ---------------------------------------------------------------------
    LOG_LEVEL: LogLevel = Field("INFO", description="Log level (logs go to stderr).")
    LOG_FILE: Path | None = Field(None, description="Optional extra log file.")
    DATA_DIR: Path | None = Field(
        None,
        description="Base directory for relative paths (unset: the user data dir, "
        "e.g. ~/.local/share/mm-ibkr-gateway).",
    )
    CACHE_DIR: Path | None = Field(
        None,
        description="Derived files that are safe to delete, e.g. the MCP tool list cache "
        "(unset: the user cache dir, e.g. ~/.cache/mm-ibkr-gateway).",
    )
    AUDIT_DB_PATH: Path = Field(Path("data/audit.db"), description="SQLite audit database.")
    AUDIT_BUSY_TIMEOUT_SECONDS: float = Field(
        5.0, gt=0, le=60, description="Wait this long for a locked audit database, then refuse."
    )

    # --- Log format (logs/packaging) --------------------------------------------------------
    LOG_FORMAT: LogFormat = Field(
        "text", description="text, or json: one JSON object per line (loguru's serializer)."
    )

    # --- Embedded simulator -----------------------------------------------------------------
    SIM_SEED: int = Field(42, ge=0, description="Simulator random seed.")
    SIM_PORT: int = Field(
        0, ge=0, le=65535, description="Simulator port for --sim (0: pick a free one)."
    )
    SIM_ACCOUNTS: CsvList = Field(("DU1234567",), description="Simulated account ids.")
    SIM_STARTING_CASH: Decimal = Field(
        Decimal(1_000_000), ge=0, description="Starting cash per simulated account."
    )
    SIM_TRADING_HOURS: bool = Field(
        False, description="true: the simulator keeps exchange hours; false: always open."
    )

    # --- Simulator order book ---------------------------------------------------------------
    SIM_MASTER_CLIENT_ID: int = Field(
        -1, ge=-1, description="Simulator master API client id (sees every order; -1: none)."
    )
    SIM_REJECT_MKT_REMAINDER: bool = Field(
        False, description="true: cancel the rest of a partially filled MKT order (IB paper)."
    )

    # --- Simulator drills (fault drills, IB's limits, persistent state) ----------------------
    SIM_CONTROL_DIR: Path | None = Field(
        None, description="Directory of the sim-ctl control socket (empty: the system temp dir)."
    )
    SIM_FAULTS: CsvList = Field(
        (), description="Faults set at simulator start, e.g. latency=200:50,reject-next=2."
    )
    SIM_RESET_SECONDS: float = Field(
        3.0, ge=0, le=3600, description="How long a simulated nightly reset refuses connections."
    )
    SIM_PACING: Literal["ib", "off"] = Field(
        "ib", description="ib: enforce IB's historical data pacing (error 162); off: none."
    )
    SIM_MARKET_DATA_LINES: int = Field(
        100, ge=1, le=10_000, description="Simultaneous streaming quotes, all clients (then 101)."
    )
    SIM_ACCOUNT_UPDATE_SECONDS: float = Field(
        180.0, gt=0, le=3600, description="Account value update cycle (IB: every 3 minutes)."
    )
    SIM_STATE_FILE: Path | None = Field(
        None, description="Simulator state file kept across restarts (empty: nothing kept)."
    )
    SIM_NO_MARKET_DATA: CsvList = Field(
        (), description="Symbols without a live data subscription in the simulator (354/10167)."
    )
    SIM_MARKET_DATA_GAPS: CsvList = Field(
        (),
        description="SYMBOL=none|api|partial|partial-api: lacking subscriptions (10089/90/91).",
    )
    SIM_DELAYED_DATA: bool = Field(
        True, description="false: the simulated login has no delayed data either (10168)."
    )
    SIM_HISTORICAL_SECONDS: float = Field(
        0.0, ge=0, le=3600, description="Historical answers take this long; 51st open one: 322."
    )

    # --- Where the values came from (config resolution; set by load_settings) -------------
    _env_file: Path | None = PrivateAttr(None)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator(
        "API_TOKEN",
        "LOG_FILE",
        "DATA_DIR",
        "CACHE_DIR",
        "SIM_CONTROL_DIR",
        "SIM_STATE_FILE",
        "MAX_DAILY_LOSS",
        "MAX_POSITION_PCT_OF_NET_LIQ",
        "TRADING_HOURS_ONLY",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `API_TOKEN=` in a copied .env.example means "unset", never "the empty token".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "ALLOWED_SYMBOLS",
        "ALLOWED_SEC_TYPES",
        "ALLOWED_CURRENCIES",
        "SIM_ACCOUNTS",
        "TOOLSETS",
        "SIM_FAULTS",
        "SIM_NO_MARKET_DATA",
        "SIM_MARKET_DATA_GAPS",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("ALLOWED_SYMBOLS", "ALLOWED_SEC_TYPES", "ALLOWED_CURRENCIES")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.upper() for v in value)

    @field_validator("SIM_MARKET_DATA_GAPS")
    @classmethod
    def _gaps(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            symbol, _, kind = entry.partition("=")
            if not symbol.strip() or kind.strip().lower() not in GAP_KINDS:
                raise ValueError(
                    f"{entry!r}: expected SYMBOL=KIND, KIND one of {', '.join(GAP_KINDS)}"
                )
        return value

    def sim_market_data_gaps(self) -> dict[str, SimGapKind]:
        """``SIM_MARKET_DATA_GAPS`` as symbol → kind (for the simulator)."""
        gaps: dict[str, SimGapKind] = {}
        for entry in self.SIM_MARKET_DATA_GAPS:
            symbol, _, kind = entry.partition("=")
            gaps[symbol.strip().upper()] = next(k for k in GAP_KINDS if k == kind.strip().lower())
        return gaps

    @field_validator("SIM_ACCOUNTS")
    @classmethod
    def _accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one account id is required")
        for acct in value:
            if not acct.isalnum() or acct[0] not in "DU":
                raise ValueError(f"{acct!r} is not an IB account id (DU… or U…)")
        return value

    @field_validator("TOOLSETS")
    @classmethod
    def _toolsets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(v.lower() for v in value)
        unknown = sorted(set(names) - {"read", "trade", "admin"})
        if unknown:
            raise ValueError(f"unknown toolset(s) {unknown}; known: read, trade, admin")
        if not names:
            raise ValueError("at least one toolset is required (read)")
        return names

    @property
    def enabled_toolsets(self) -> frozenset[str]:
        """The toolsets in force (``READ_ONLY=true`` means ``read`` only)."""
        return frozenset({"read"}) if self.READ_ONLY else frozenset(self.TOOLSETS)

    @property
    def trading_hours_only(self) -> bool:
        """TRADING_HOURS_ONLY, defaulting to true for live trading and false for paper."""
        if self.TRADING_HOURS_ONLY is None:
            return self.TRADING_MODE == "live"
        return self.TRADING_HOURS_ONLY

    def approval_required(self, live: bool) -> bool:
        """Whether an order (``live``: live mode or a live account) needs a human approval."""
        return self.REQUIRE_APPROVAL == "always" or (self.REQUIRE_APPROVAL == "live" and live)

    @property
    def halt_state_path(self) -> Path:
        """The halt state file, resolved against ``DATA_DIR``."""
        return self.resolve(self.HALT_STATE_FILE)

    @property
    def audit_key_path(self) -> Path:
        """The audit HMAC key file, resolved against ``DATA_DIR``."""
        return self.resolve(self.AUDIT_KEY_FILE)

    @property
    def cli_client_id(self) -> int:
        """The client id CLI broker commands use (never the server's own)."""
        return self.IBKR_CLIENT_ID + self.CLI_CLIENT_ID_OFFSET

    @property
    def data_dir(self) -> Path:
        """``DATA_DIR`` made absolute; unset, the user data dir (never the working directory)."""
        from ibkr_mcp.userdirs import user_data_dir

        return _user_dir(self.DATA_DIR, user_data_dir)

    @property
    def cache_dir(self) -> Path:
        """``CACHE_DIR`` made absolute; unset, the user cache dir."""
        from ibkr_mcp.userdirs import user_cache_dir

        return _user_dir(self.CACHE_DIR, user_cache_dir)

    @property
    def env_file(self) -> Path | None:
        """The env file these settings were read from (``None``: environment and defaults)."""
        return self._env_file

    @property
    def sources(self) -> dict[str, str]:
        """Where each value came from: ``env``, ``file``, ``override`` or ``default``."""
        return {name: self._sources.get(name, "default") for name in type(self).model_fields}

    def resolve(self, path: Path) -> Path:
        """Return ``path`` with ``~`` expanded and, if relative, anchored at ``DATA_DIR``."""
        return _anchored(self.data_dir, path.expanduser())

    @property
    def audit_db_path(self) -> Path:
        """The audit database path, resolved against ``DATA_DIR``."""
        return self.resolve(self.AUDIT_DB_PATH)

    @property
    def kill_switch_path(self) -> Path:
        """The kill switch file, resolved against ``DATA_DIR``."""
        return self.resolve(self.KILL_SWITCH_FILE)

    @property
    def live_override_path(self) -> Path:
        """The live-trading override file, resolved against ``DATA_DIR``."""
        return self.resolve(self.LIVE_TRADING_OVERRIDE_FILE)

    @property
    def log_file_path(self) -> Path | None:
        """The optional log file, resolved against ``DATA_DIR``."""
        return None if self.LOG_FILE is None else self.resolve(self.LOG_FILE)

    def safety_snapshot(self) -> dict[str, str]:
        """The effective safety settings as strings, for health output and audit rows."""
        return {
            "trading_mode": self.TRADING_MODE,
            "orders_enabled": str(self.ORDERS_ENABLED).lower(),
            "max_order_quantity": str(self.MAX_ORDER_QUANTITY),
            "max_order_notional": str(self.MAX_ORDER_NOTIONAL),
            "price_band_pct": str(self.PRICE_BAND_PCT),
            "allow_mkt_on_delayed_quotes": str(self.ALLOW_MKT_ON_DELAYED_QUOTES).lower(),
            "allowed_symbols": ",".join(self.ALLOWED_SYMBOLS) or "*",
            "allowed_sec_types": ",".join(self.ALLOWED_SEC_TYPES),
            "allowed_currencies": ",".join(self.ALLOWED_CURRENCIES),
            "kill_switch_file": str(self.kill_switch_path),
            "live_override_file": str(self.live_override_path),
            "confirmation_token_ttl_seconds": str(self.CONFIRMATION_TOKEN_TTL_SECONDS),
            "max_orders_per_minute": str(self.MAX_ORDERS_PER_MINUTE),
            "max_orders_per_day": str(self.MAX_ORDERS_PER_DAY),
            "max_daily_notional": str(self.MAX_DAILY_NOTIONAL),
            "duplicate_order_window_seconds": str(self.DUPLICATE_ORDER_WINDOW_SECONDS),
            "rejection_breaker": f"{self.MAX_REJECTIONS} in {self.REJECTION_WINDOW_MINUTES} min",
            "max_daily_loss": "off" if self.MAX_DAILY_LOSS is None else str(self.MAX_DAILY_LOSS),
            "max_position_pct_of_net_liq": "off"
            if self.MAX_POSITION_PCT_OF_NET_LIQ is None
            else str(self.MAX_POSITION_PCT_OF_NET_LIQ),
            "allow_short": str(self.ALLOW_SHORT).lower(),
            "trading_hours_only": str(self.trading_hours_only).lower(),
            "require_approval": self.REQUIRE_APPROVAL,
            "toolsets": ",".join(sorted(self.enabled_toolsets)),
        }

    def masked(self) -> dict[str, str]:
        """Every field as a display string, secrets masked and paths resolved."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                out[name] = "(unset)" if value is None else "********"
            elif name == "DATA_DIR":
                out[name] = str(self.data_dir)
            elif isinstance(value, Path):
                out[name] = str(self.resolve(value))
            elif isinstance(value, tuple):
                out[name] = ",".join(value)
            elif value is None:
                out[name] = "(unset)"
            else:
                out[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def _user_dir(value: Path | None, default: Callable[[], Path]) -> Path:
    """A directory setting made absolute; unset, ``default()`` (a platformdirs user dir)."""
    if value is None:
        return _absolute(default())
    # `~` and a relative value depend on HOME and the cwd: expand/resolve them outside the
    # cache (keyed by value), or a changed HOME/cwd would get a stale answer.
    directory = value.expanduser()
    return _absolute(directory) if directory.is_absolute() else directory.resolve()


@lru_cache(maxsize=64)
def _absolute(directory: Path) -> Path:
    # Cached per value: every order's gate facts ask for the kill-switch and override paths,
    # and resolving them is a realpath syscall chain each time (issue 15).
    return directory.expanduser().resolve()


@lru_cache(maxsize=256)
def _anchored(base: Path, path: Path) -> Path:
    path = path.expanduser()
    if path.is_absolute():
        return path
    return (base / path).resolve()


class SettingsError(Exception):
    """Raised when the environment holds an invalid setting; the message is one clear line."""


def describe_validation_error(exc: ValidationError) -> str:
    """Turn pydantic's report into one line per bad variable, naming the allowed values."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        value = err.get("input")
        msg = err["msg"]
        ctx = err.get("ctx") or {}
        if err["type"] == "literal_error" and "expected" in ctx:
            msg = f"allowed values are {ctx['expected']}"
        lines.append(f"Invalid setting {name}={value!r}: {msg}")
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build ``Settings`` from the environment and one env file, raising ``SettingsError``.

    The env file is the first that exists of ``--env-file``/``IBKR_MCP_ENV_FILE``, the user
    config file and ``./.env`` (``ibkr_mcp.userdirs.find_env_file``); the environment overrides
    it. A relative ``DATA_DIR`` written in the file is anchored at the file's directory, so the
    result does not depend on where the process was started.

    Args:
        **overrides: Field values that take precedence over the environment (used by tests
            and by ``--sim``); ``_env_file`` names the env file (``None``: read none).

    Raises:
        SettingsError: If any value is invalid or a named env file does not exist.
    """
    from ibkr_mcp.userdirs import explicit_env_file, find_env_file

    if "_env_file" in overrides:
        named = overrides.pop("_env_file")
        env_file = None if named is None else Path(str(named)).absolute()
    else:
        try:
            env_file = find_env_file()
        except FileNotFoundError as exc:
            explicit = explicit_env_file()
            if explicit is not None and explicit[0].expanduser().is_dir():
                path, origin = explicit
                raise SettingsError(
                    f"Env file {path.expanduser().absolute()} (from {origin}) is a directory, "
                    "not a file"
                ) from None
            raise SettingsError(str(exc)) from None
    in_file: set[str] = set()
    if env_file is not None:
        _check_env_file(env_file)
        in_file = _check_names(env_file)
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    sources = _sources(in_file, overrides)
    for name in ("DATA_DIR", "CACHE_DIR"):
        value = getattr(settings, name)
        if (
            env_file is not None
            and sources[name] == "file"
            and value is not None
            and not value.expanduser().is_absolute()
        ):
            settings = settings.model_copy(update={name: env_file.parent / value})
    settings._env_file = env_file
    settings._sources = sources
    return settings


def _check_env_file(path: Path) -> None:
    """Refuse an env file that cannot be read as UTF-8 text, in one line naming it.

    pydantic-settings and python-dotenv would raise ``UnicodeDecodeError`` / ``OSError`` deep
    inside their parsers (a traceback); reading it once here first costs one small read.

    Raises:
        SettingsError: If the file cannot be read or is not UTF-8.
    """
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise SettingsError(
            f"Env file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line "
            f"{line}); save it as UTF-8 or name another file"
        ) from None
    except IsADirectoryError:
        raise SettingsError(f"Env file {path} is a directory, not a file") from None
    except OSError as exc:
        raise SettingsError(f"Env file {path} cannot be read: {exc.strerror or exc}") from None


def _check_names(path: Path) -> set[str]:
    """Refuse a name in the env file that is a near miss of a setting (a misspelled limit).

    ``MAX_ORDER_QUANTIY=5`` was ignored and the default limit (1000) applied, silently. Names
    far from every setting are left alone: the file may hold other tools' variables.

    Returns:
        The names the file sets (read once: ``_sources`` reports which came from it).

    Raises:
        SettingsError: Naming the line's name and the setting it is close to.
    """
    import difflib

    from dotenv import dotenv_values

    known = {name.upper() for name in Settings.model_fields} | {"IBKR_MCP_ENV_FILE"}
    names = set(dotenv_values(path, encoding="utf-8"))
    for name in names:
        upper = name.upper()
        if upper in known and name != upper:
            raise SettingsError(
                f"Env file {path}: {name} is not read (setting names are upper case); write {upper}"
            )
        if upper in known:
            continue
        near = difflib.get_close_matches(upper, known, n=1, cutoff=0.85)
        if near:
            raise SettingsError(
                f"Env file {path}: {name} is not a setting; did you mean {near[0]}? (a "
                "misspelled setting would be ignored and its default used)"
            )
    return names


def _sources(in_file: set[str], overrides: dict[str, object]) -> dict[str, str]:
    """Where each field's value comes from, in pydantic-settings' order of precedence.

    ``in_file``: the names the env file sets (none without one).
    """
    out: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in overrides:
            out[name] = "override"
        elif name in os.environ:
            out[name] = "env"
        elif name in in_file:
            out[name] = "file"
        else:
            out[name] = "default"
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()
