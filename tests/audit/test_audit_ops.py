"""tail, export (CSV / JSONL round trip), backup (online, verifiable) and the Typer sub-app."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import orjson
import pytest
from audit_helpers import POPULATED, populate
from typer.testing import CliRunner

from ibkr_mcp.audit import AuditLog, backup, export, row_hash, tail, verify_file
from ibkr_mcp.cli.audit import audit_app
from ibkr_mcp.errors import AuditUnavailableError

TOTAL = sum(POPULATED.values())


@pytest.fixture
async def history(audit: AuditLog) -> Path:
    await populate(audit)
    return audit.path


def _raw(path: Path, table: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY seq")]
    finally:
        conn.close()


def test_tail_returns_the_newest_rows_oldest_first(history: Path) -> None:
    rows = tail(history, 3)
    assert [r["seq"] for r in rows] == [TOTAL - 2, TOTAL - 1, TOTAL]
    assert [r["table"] for r in rows] == ["fills", "order_events", "order_events"]
    assert len(tail(history, 1000)) == TOTAL


@pytest.mark.parametrize("table", list(POPULATED))
def test_export_jsonl_round_trips_and_rehashes(history: Path, table: str) -> None:
    buf = io.StringIO()
    assert export(history, "jsonl", buf, table=table) == POPULATED[table]
    rows = [orjson.loads(line) for line in buf.getvalue().splitlines()]
    assert rows == _raw(history, table)
    assert all(row_hash(r) == r["row_hash"] for r in rows)


def test_export_jsonl_all_tables_in_chain_order(history: Path) -> None:
    buf = io.StringIO()
    assert export(history, "jsonl", buf) == TOTAL
    rows = [orjson.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, TOTAL + 1))
    for row in rows:
        table = row.pop("table")
        assert row_hash(row) == row["row_hash"], table


@pytest.mark.parametrize("table", [*POPULATED, None])
def test_export_csv_round_trips(history: Path, table: str | None) -> None:
    buf = io.StringIO()
    count = export(history, "csv", buf, table=table)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert count == len(rows) == (TOTAL if table is None else POPULATED[table])
    for name in [table] if table else list(POPULATED):
        raw = _raw(history, name)
        mine = [r for r in rows if table or r["table"] == name]
        assert len(mine) == len(raw)
        for got, want in zip(mine, raw, strict=True):
            for key, value in want.items():
                assert got[key] == ("" if value is None else str(value)), (name, key)
    if table == "order_events":
        assert rows[0]["limit_price"] == "190.10"


def test_export_views_and_bad_arguments(history: Path) -> None:
    buf = io.StringIO()
    assert export(history, "csv", buf, table="orders") == 2
    assert "orderId" in buf.getvalue().splitlines()[0]
    assert export(history, "jsonl", io.StringIO(), table="audit") == TOTAL
    with pytest.raises(ValueError, match="table"):
        export(history, "jsonl", io.StringIO(), table="sqlite_master")
    with pytest.raises(ValueError, match="fmt"):
        export(history, "xml", io.StringIO())  # type: ignore[arg-type]


async def test_backup_while_the_log_is_open_verifies(audit: AuditLog, tmp_path: Path) -> None:
    await populate(audit)
    dest = tmp_path / "backups" / "copy.db"
    backup(audit.path, dest)
    await populate(audit, key="key-2")  # the server keeps appending; the copy is a snapshot
    copy, live = verify_file(dest), verify_file(audit.path)
    assert copy.ok and copy.rows == TOTAL
    assert live.ok and live.rows == 2 * TOTAL
    assert (
        _raw(dest, "order_events") == _raw(audit.path, "order_events")[: POPULATED["order_events"]]
    )
    conn = sqlite3.connect(dest)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
    finally:
        conn.close()
    with pytest.raises(FileExistsError):
        backup(audit.path, dest)
    with pytest.raises(AuditUnavailableError):
        backup(tmp_path / "missing.db", tmp_path / "other.db")


runner = CliRunner()


def test_cli_verify_ok_and_broken(history: Path, tmp_path: Path) -> None:
    ok = runner.invoke(audit_app, ["verify", "--db", str(history)])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output and f"{TOTAL} rows" in ok.output
    broken = tmp_path / "broken.db"
    backup(history, broken)
    conn = sqlite3.connect(broken)
    conn.execute("DROP TRIGGER fills_no_update")
    conn.execute("UPDATE fills SET price = '1' WHERE id = 1")
    conn.commit()
    conn.close()
    bad = runner.invoke(audit_app, ["verify", "--db", str(broken)])
    assert bad.exit_code == 1
    assert "fills" in bad.output and "id 1" in bad.output and "BROKEN" in bad.output
    assert "fills_no_update" in bad.output
    missing = runner.invoke(audit_app, ["verify", "--db", str(tmp_path / "nope.db")])
    assert missing.exit_code == 9


def test_cli_tail_export_backup(history: Path, tmp_path: Path) -> None:
    shown = runner.invoke(audit_app, ["tail", "-n", "2", "--json", "--db", str(history)])
    assert shown.exit_code == 0, shown.output
    assert [orjson.loads(x)["seq"] for x in shown.output.splitlines()] == [TOTAL - 1, TOTAL]
    table = runner.invoke(audit_app, ["tail", "--db", str(history)])
    assert table.exit_code == 0
    assert all(word in table.output for word in ("dry_run", "MSFT", "fills", "c-order"))
    out = tmp_path / "export.csv"
    exported = runner.invoke(
        audit_app, ["export", "-f", "csv", "--table", "fills", "-o", str(out), "--db", str(history)]
    )
    assert exported.exit_code == 0, exported.output
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == POPULATED["fills"]
    dest = tmp_path / "b.db"
    done = runner.invoke(audit_app, ["backup", str(dest), "--db", str(history)])
    assert done.exit_code == 0 and "verified" in done.output
    again = runner.invoke(audit_app, ["backup", str(dest), "--db", str(history)])
    assert again.exit_code == 2


def test_cli_verify_fails_when_triggers_are_dropped(history: Path, tmp_path: Path) -> None:
    unguarded = tmp_path / "unguarded.db"
    backup(history, unguarded)
    conn = sqlite3.connect(unguarded)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.commit()
    conn.close()
    result = runner.invoke(audit_app, ["verify", "--db", str(unguarded)])
    assert result.exit_code == 1, result.output
    assert "NOT protected" in result.output and "intact" not in result.output
