"""Synchronous SQLite access for the audit trail: connections, the chained append, reads."""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final, Literal

from ibkr_mcp.audit._codec import GENESIS_HASH, row_hash, utc_iso
from ibkr_mcp.audit._schema import TABLES, SchemaTooNewError, ensure_schema
from ibkr_mcp.audit._sidefiles import SideFileError, SideFiles
from ibkr_mcp.errors import AuditUnavailableError, IdempotencyConflictError

Synchronous = Literal["FULL", "NORMAL"]

#: The chained tables, in a fixed order.
CHAIN_TABLES: Final[tuple[str, ...]] = tuple(TABLES)

#: Tables whose rows must be on disk before the call returns (an order is sent after this).
DURABLE_TABLES: Final[frozenset[str]] = frozenset({"order_events", "fills"})

_HEAD_SQL: Final[str] = (
    "SELECT seq, row_hash FROM ("
    + " UNION ALL ".join(
        f"SELECT * FROM (SELECT seq, row_hash FROM {t} ORDER BY seq DESC LIMIT 1)"
        for t in CHAIN_TABLES
    )
    + ") ORDER BY seq DESC LIMIT 1"
)

_INSERT_SQL: Final[dict[str, str]] = {
    t: f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
    for t, cols in TABLES.items()
}


def _normalise(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce values to exactly what SQLite will hand back, so the stored row re-hashes.

    (A non-str in a TEXT column would be stored as text and read back as a str: a hash made
    from the original value would then never verify.)
    """
    columns = TABLES[table]
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = columns[name]
        if value is None:
            out[name] = None
        elif kind is str:
            raw = value.value if isinstance(value, Enum) else value
            out[name] = raw if isinstance(raw, str) else str(raw)
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{table}.{name} must be an int, got {type(value).__name__}")
            if not -(2**63) <= value < 2**63:
                raise ValueError(f"{table}.{name} is out of SQLite's integer range: {value}")
            out[name] = value
        else:
            out[name] = float(value)
    return out


def _remedy(exc: BaseException, busy_timeout: float) -> str:
    text = str(exc).lower()
    if isinstance(exc, SideFileError):
        return (
            "The database's -wal/-shm file was changed under the running server, which stopped "
            "using it rather than crash. Restore the file's permissions (or stop whatever "
            "touched it), restart every process using the database, and run `ibkr-mcp audit "
            "verify`."
        )
    if "locked" in text or "busy" in text:
        return (
            f"Another process held the audit database lock for more than {busy_timeout:g} s; "
            "find it (e.g. `fuser <db>`), stop it, and retry."
        )
    if "full" in text or "no space" in text:
        return "Free disk space on the volume that holds the audit database, then retry."
    if "not a database" in text or "malformed" in text or "newer" in text:
        return (
            "The file is not an audit database this version can use: move it aside (keep it for "
            "forensics) or point AUDIT_DB_PATH elsewhere, then restart."
        )
    return (
        "Make sure the directory of AUDIT_DB_PATH exists (or can be created) and is writable by "
        "the server's user on a read-write disk, then restart or retry."
    )


def unavailable(
    path: Path, exc: BaseException, doing: str, busy_timeout: float = 5.0
) -> AuditUnavailableError:
    """Wrap a SQLite/OS failure into ``AuditUnavailableError`` with a remedy."""
    return AuditUnavailableError(
        f"Cannot {doing} the audit database {path}: {exc}",
        remedy=_remedy(exc, busy_timeout),
        details={"path": str(path), "cause": type(exc).__name__, "error": str(exc)},
    )


#: Page cache per connection, in KiB.
CACHE_KIB: Final = 1024


def connect(path: Path, *, busy_timeout: float = 5.0, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection in autocommit mode (transactions are explicit).

    Args:
        path: The database file.
        busy_timeout: Seconds to wait for a lock before failing.
        readonly: Open with ``mode=ro`` (never creates the file, never writes).

    Raises:
        sqlite3.Error: If SQLite cannot open the file.
    """
    if readonly:
        uri = path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    conn.row_factory = sqlite3.Row
    # The trail is appended and read by index near its end: 1 MiB of page cache per connection
    # is plenty (SQLite's default is 2 MiB, grown into over a long session: issue 15 soak).
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return conn


def open_readonly(path: Path, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to an existing audit database.

    Raises:
        AuditUnavailableError: If the file is missing or not an audit database.
    """
    if not path.is_file():
        raise AuditUnavailableError(
            f"Audit database {path} does not exist.",
            remedy="Pass the right path (--db / AUDIT_DB_PATH); the server creates it on start.",
            details={"path": str(path)},
        )
    try:
        conn = connect(path, busy_timeout=busy_timeout, readonly=True)
        try:
            names = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise unavailable(path, exc, "read", busy_timeout) from exc
    missing = [t for t in CHAIN_TABLES if t not in names]
    if missing:
        conn.close()
        raise AuditUnavailableError(
            f"{path} is not an audit database (missing tables: {', '.join(missing)}).",
            remedy="Pass the path of the audit database (AUDIT_DB_PATH).",
            details={"path": str(path), "missing": missing},
        )
    return conn


class Writer:
    """The one connection that appends; used from a single thread only."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime],
        busy_timeout: float,
        events_synchronous: Synchronous,
        durable_synchronous: Synchronous = "FULL",
        key: bytes | None = None,
    ) -> None:
        self.path = path
        #: The HMAC key of the chain (None: plain SHA-256 rows, e.g. tests and old setups).
        self._key = key
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._sync: dict[str, Synchronous] = {
            t: durable_synchronous if t in DURABLE_TABLES else events_synchronous
            for t in CHAIN_TABLES
        }
        self._current_sync: str | None = None
        self._conn: sqlite3.Connection | None = None
        #: Checked before every use of this (and the reader's) connection.
        self.side_files = SideFiles(path)

    def _fail(self, exc: BaseException, doing: str) -> AuditUnavailableError:
        return unavailable(self.path, exc, doing, self._busy_timeout)

    def open(self) -> None:
        """Create the directory and schema, switch to WAL.

        Raises:
            AuditUnavailableError: If any of that fails.
        """
        if self._conn is not None:
            return
        if not self.side_files.poisoned:
            # A new open may find new side files (the last close removed them): not a change
            # under an open database.
            self.side_files = SideFiles(self.path)
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path, busy_timeout=self._busy_timeout)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not enable WAL (journal_mode={mode})")
            ensure_schema(conn)
        except (sqlite3.Error, OSError, SchemaTooNewError) as exc:
            if conn is not None:
                conn.close()
            raise self._fail(exc, "open") from exc
        self._conn = conn
        self._current_sync = None
        self.side_files.remember()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self.side_files.retire(self._conn)
            self._conn = None

    def _not_open(self) -> AuditUnavailableError:
        return AuditUnavailableError(
            f"The audit log {self.path} is not open.",
            remedy="Call AuditLog.open() at startup before recording anything.",
            details={"path": str(self.path)},
        )

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._not_open()
        return self._conn

    def _set_sync(self, conn: sqlite3.Connection, mode: str) -> None:
        if self._current_sync != mode:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._current_sync = mode

    def append_batch(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int | Exception]:
        """Append rows in order, in ONE transaction (group commit), each chained after the last.

        The head of the chain is read once inside ``BEGIN IMMEDIATE``, so other processes
        appending to the same file are serialised by SQLite's write lock and the chain stays
        linear. Every row is checked on its own (second intent, second decision, repeated fill,
        bad value) BEFORE its insert: a refused row writes nothing and its exception is its
        outcome, the others still commit. The commit is ``synchronous=FULL`` when any row's
        table needs it, so no outcome is handed back before that row is on disk.

        Returns:
            One outcome per row, in order: the row's ``id`` (per table; a repeated fill: the id
            of the row already recording it), or the exception refusing that row. If the
            transaction itself fails, nothing is written and every outcome is an
            ``AuditUnavailableError``.
        """
        if self._conn is None:
            return [self._not_open() for _ in rows]
        try:
            return self._write(self._conn, rows)
        except sqlite3.Error as exc:
            # One exception per caller: each raises (and extends the traceback of) its own.
            failures: list[int | Exception] = []
            for _ in rows:
                failure = self._fail(exc, f"append {len(rows)} row(s) to")
                failure.__cause__ = exc
                failures.append(failure)
            return failures

    def _write(
        self, conn: sqlite3.Connection, rows: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[int | Exception]:
        self.side_files.check()
        # synchronous=FULL on an order row also syncs every earlier (NORMAL) row in the WAL.
        durable = any(self._sync[table] == "FULL" for table, _ in rows)
        self._set_sync(conn, "FULL" if durable else "NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            head = conn.execute(_HEAD_SQL).fetchone()
            seq, prev = (0, GENESIS_HASH) if head is None else (int(head[0]), str(head[1]))
            next_id: dict[str, int] = {}
            outcomes: list[int | Exception] = []
            for table, values in rows:
                try:
                    row = self._checked_row(conn, table, values)
                except sqlite3.Error:
                    raise  # the database failed: the whole batch fails
                except Exception as exc:  # noqa: BLE001 - refuses this row only
                    outcomes.append(exc)
                    continue
                if isinstance(row, int):  # a fill already recorded
                    outcomes.append(row)
                    continue
                if table not in next_id:
                    sql = f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"
                    next_id[table] = int(conn.execute(sql).fetchone()[0])
                row["id"], row["seq"] = next_id[table], seq + 1
                row["prev_hash"] = prev
                row["row_hash"] = row_hash(row, self._key)
                conn.execute(_INSERT_SQL[table], row)
                seq, prev = seq + 1, row["row_hash"]
                outcomes.append(next_id[table])
                next_id[table] += 1
            conn.execute("COMMIT")
            self.side_files.remember()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _checked_row(
        self, conn: sqlite3.Connection, table: str, values: Mapping[str, Any]
    ) -> dict[str, Any] | int:
        """The row to insert (chain fields still to fill in), or the id of a recorded fill.

        Raises:
            IdempotencyConflictError: For a second intent or a second decision.
            TypeError: For a value of the wrong type.
            ValueError: For an out-of-range integer.
        """
        through = None
        if COUNTED_THROUGH in values:
            values = dict(values)
            through = values.pop(COUNTED_THROUGH)
        # A key already bound wins over stale counters: its caller replays the bound order.
        _refuse_second_intent(conn, table, values)
        if through is not None:
            _refuse_stale_counts(conn, through)
        _refuse_second_decision(conn, table, values)
        known = _recorded_fill(conn, table, values)
        if known is not None:
            return known
        row: dict[str, Any] = {"id": 0, "seq": 0, "ts": utc_iso(self._clock())}
        row.update(_normalise(table, values))
        return row

    def probe(self) -> None:
        """Take and release the write lock, proving the database is writable right now.

        Raises:
            AuditUnavailableError: If it is not.
        """
        conn = self._require()
        try:
            self.side_files.check()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if not isinstance(exc, SideFileError) and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._fail(exc, "write") from exc


# ``+event`` keeps SQLite on the key's own index: without it the planner picked the (event, ts)
# index for the intent check and scanned every intent ever recorded, under the write lock, on
# every intent row (O(n): 0.24 ms at 700 intents; issue 15).
SECOND_INTENT_SQL: Final[str] = (
    "SELECT 1 FROM order_events WHERE idempotency_key = ? AND +event = 'intent' LIMIT 1"
)
SECOND_DECISION_SQL: Final[str] = (
    "SELECT event FROM order_events WHERE idempotency_key = ? AND +event IN (?, ?, ?) LIMIT 1"
)


#: Not a column: the newest ``order_events`` id an order's flow counters were read through. A row
#: carrying it is refused (``StaleCountsError``) if an intent was recorded after that id.
COUNTED_THROUGH: Final[str] = "_counted_through"
#: An intent after the counters' snapshot: a rowid range (``+event``: not the event index).
LATER_INTENT_SQL: Final[str] = (
    "SELECT 1 FROM order_events WHERE id > ? AND +event = 'intent' LIMIT 1"
)


class StaleCountsError(Exception):
    """Another intent was recorded after the flow counters an order was judged on were read.

    Raised for the order's gate and intent rows (nothing of them is written) so that the
    order is judged again on counters that include it (any process sharing the database).
    """


def _refuse_stale_counts(conn: sqlite3.Connection, through: object) -> None:
    """Checked under the write lock, so no intent can land between the check and the insert."""
    if not isinstance(through, int):
        raise TypeError(f"{COUNTED_THROUGH} must be an int, got {type(through).__name__}")
    if conn.execute(LATER_INTENT_SQL, (through,)).fetchone() is not None:
        raise StaleCountsError(f"an order intent was recorded after row {through}")


def _recorded_fill(conn: sqlite3.Connection, table: str, values: Mapping[str, Any]) -> int | None:
    """The id of the row already recording this execution (or its commission), if any.

    IB repeats executions and commission reports on every ``reqExecutions``: one row per
    execution id and kind, however many times it is read (checked under the write lock).
    """
    if table != "fills":
        return None
    row = conn.execute(
        "SELECT id FROM fills WHERE exec_id = ? AND kind = ? LIMIT 1",
        (values.get("exec_id"), values.get("kind")),
    ).fetchone()
    return None if row is None else int(row[0])


def _refuse_second_intent(conn: sqlite3.Connection, table: str, values: Mapping[str, Any]) -> None:
    """An idempotency key binds one intent, across processes: checked under the write lock."""
    key = values.get("idempotency_key")
    if table != "order_events" or values.get("event") != "intent" or not key:
        return
    taken = conn.execute(SECOND_INTENT_SQL, (key,)).fetchone()
    if taken is not None:
        raise IdempotencyConflictError(
            f"idempotency_key {key!r} is already bound to an order intent.",
            remedy="Retry with the same key to get the original order, or use a new key.",
            details={"idempotency_key": key, "already_bound": True},
        )


#: Events that settle a pending approval; one per approval, across processes.
_DECISIONS = ("approved", "denied", "expired")


def _refuse_second_decision(
    conn: sqlite3.Connection, table: str, values: Mapping[str, Any]
) -> None:
    """An approval is decided once (approve, deny or expire), checked under the write lock."""
    key = values.get("idempotency_key")
    if table != "order_events" or values.get("event") not in _DECISIONS or not key:
        return
    taken = conn.execute(SECOND_DECISION_SQL, (key, *_DECISIONS)).fetchone()
    if taken is not None:
        raise IdempotencyConflictError(
            f"this approval was already decided ({taken[0]}).",
            remedy="List the approvals again (`ibkr-mcp approvals list`) to see its state.",
            details={"idempotency_key": key, "already_decided": taken[0]},
        )


def row_dict(row: sqlite3.Row, *, table: str | None = None) -> dict[str, Any]:
    """A ``sqlite3.Row`` as a plain dict (values as stored), optionally tagged with its table."""
    out: dict[str, Any] = {} if table is None else {"table": table}
    out.update(zip(row.keys(), tuple(row), strict=True))
    return out


def query(conn: sqlite3.Connection, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """Run a read query and return the rows as stored (JSON columns stay JSON text)."""
    return [row_dict(r) for r in conn.execute(sql, params)]


def snapshot_queries(
    conn: sqlite3.Connection, statements: Sequence[tuple[str, Any]]
) -> list[list[dict[str, Any]]]:
    """Run read queries in one read transaction (one snapshot); each one's rows as stored."""
    conn.execute("BEGIN")
    try:
        return [query(conn, sql, params) for sql, params in statements]
    finally:
        conn.execute("COMMIT")


def chain_rows(
    conn: sqlite3.Connection, *, descending: bool = False, where: str = "", params: Any = ()
) -> Generator[tuple[str, sqlite3.Row], None, None]:
    """Every row of every chained table as ``(table, row)`` in global ``seq`` order (streamed)."""
    order = "DESC" if descending else "ASC"

    def tagged(table: str) -> Iterator[tuple[str, sqlite3.Row]]:
        for row in conn.execute(f"SELECT * FROM {table} {where} ORDER BY seq {order}", params):
            yield table, row

    cursors = [tagged(t) for t in CHAIN_TABLES]
    yield from heapq.merge(*cursors, key=lambda tr: int(tr[1]["seq"]), reverse=descending)


def recent_rows(
    conn: sqlite3.Connection, limit: int, correlation_id: str | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` rows across tables, newest first, each tagged with ``table``."""
    where, params = ("WHERE correlation_id = ?", (correlation_id,)) if correlation_id else ("", ())
    out: list[dict[str, Any]] = []
    rows = chain_rows(conn, descending=True, where=where, params=params)
    conn.execute("BEGIN")  # one snapshot across the three tables
    try:
        for table, row in rows:
            if len(out) >= limit:
                break
            out.append(row_dict(row, table=table))
    finally:
        rows.close()  # finalise the cursors before ending the read transaction
        conn.execute("COMMIT")
    return out
