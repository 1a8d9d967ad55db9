"""``ibkr-mcp audit verify|tail|export|backup``: a Typer sub-app the main CLI mounts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from ibkr_mcp.errors import AuditUnavailableError, cli_exit_code

audit_app = typer.Typer(
    help="Verify, inspect, export and back up the audit trail.", no_args_is_help=True
)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Audit database file (default: AUDIT_DB_PATH from settings)."),
]


def _db(db: Path | None, *, as_json: bool = False) -> Path:
    if db is not None:
        if db.is_dir():  # the audit layer would say "does not exist", which misleads
            raise _usage(f"--db {db} is a directory; name the audit database file.")
        return db
    from ibkr_mcp.cli.common import settings_or_exit

    return settings_or_exit(as_json=as_json).audit_db_path


def _fail(exc: AuditUnavailableError, *, as_json: bool = False) -> typer.Exit:
    if as_json:  # the CLI convention: a --json failure is the error object on stdout
        from ibkr_mcp.cli.common import write_json

        write_json({"error": exc.to_dict()})
    _err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
    return typer.Exit(cli_exit_code(exc))


def _usage(message: str) -> typer.Exit:
    """Print a one-line usage error about a path the caller named; exit 2."""
    _err.print(f"[red]✗[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(2)


def _output_file(path: Path, option: str) -> Path:
    """``path`` if a file can be written there, else a one-line usage error (exit 2).

    Checked before the database is read so a typo costs nothing; the write itself can still
    fail (permissions, a full disk), and ``_write_failed`` reports that in one line too.
    """
    if path.is_dir():
        raise _usage(f"{option} {path} is a directory; name a file to write.")
    parent = path.parent
    if not parent.exists():
        raise _usage(f"{option} {path}: directory {parent} does not exist; create it first.")
    if not parent.is_dir():
        raise _usage(f"{option} {path}: {parent} is not a directory.")
    return path


def _write_failed(path: Path, option: str, exc: OSError) -> typer.Exit:
    return _usage(f"{option} {path}: cannot write: {exc.strerror or exc}.")


KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="Audit HMAC key file (default: AUDIT_KEY_FILE from settings)."),
]
AnchorOption = Annotated[
    Path | None,
    typer.Option("--anchor", help="Anchor file: the trail must still extend every line of it."),
]


def _key(key_file: Path | None) -> bytes | None:
    from ibkr_mcp.audit.keys import read_key
    from ibkr_mcp.config import SettingsError, load_settings

    if key_file is None:
        try:
            key_file = load_settings().audit_key_path
        except SettingsError as exc:
            _err.print(f"[red]✗[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
    elif not key_file.is_file():
        # Named explicitly: a typo must not read as "rows are keyed but no key was given".
        what = "is a directory" if key_file.is_dir() else "does not exist"
        raise _usage(f"--key {key_file} {what}; name the audit key file.")
    try:
        return read_key(key_file)
    except AuditUnavailableError as exc:
        raise _fail(exc) from None


@audit_app.command("anchor")
def anchor_cmd(
    output: Annotated[
        Path | None, typer.Option("--output", help="Append the anchor line to this file.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Print the head of the chain (seq, hash, time) as one JSON line, or append it to FILE."""
    from ibkr_mcp.audit.anchor import anchor_line, head_anchor

    if output is not None:
        _output_file(output, "--output")
    path = _db(db)
    try:
        anchor = head_anchor(path)
    except AuditUnavailableError as exc:
        raise _fail(exc) from None
    if anchor is None:
        _err.print("The audit trail is empty: nothing to anchor yet.")
        raise typer.Exit(1)
    line = anchor_line(anchor)
    if output is None:
        sys.stdout.write(line + "\n")
        return
    try:
        with output.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        raise _write_failed(output, "--output", exc) from None
    _out.print(f"[green]✓[/green] anchored seq {anchor['seq']} in {output}")


@audit_app.command("verify")
def verify_cmd(
    db: DbOption = None, key_file: KeyOption = None, anchor: AnchorOption = None
) -> None:
    """Recompute every row hash (HMAC with the key) and link; exit 1 naming the first bad row.

    With ``--anchor``, also prove nothing after an anchored row was cut off.
    """
    from ibkr_mcp.audit.verify import verify_file

    path = _db(db)
    key = _key(key_file)
    try:
        result = verify_file(path, key)
    except AuditUnavailableError as exc:
        raise _fail(exc) from None
    if anchor is not None:
        from ibkr_mcp.audit.anchor import check_anchors

        try:
            problems = check_anchors(path, anchor)
        except AuditUnavailableError as exc:
            raise _fail(exc) from None
        except OSError as exc:
            raise _usage(f"--anchor {anchor}: cannot read: {exc.strerror or exc}.") from None
        except UnicodeDecodeError:
            raise _usage(f"--anchor {anchor} is not an anchor file (not UTF-8 text).") from None
        for problem in problems:
            _out.print(f"[red]✗[/red] {problem}", soft_wrap=True)
        if problems:
            raise typer.Exit(1)
    for warning in result.warnings:
        _out.print(f"[yellow]![/yellow] {warning}")
    if result.first_bad is not None:
        bad = result.first_bad
        _out.print(
            f"[red]✗[/red] audit chain BROKEN at table [bold]{bad.table}[/bold] id "
            f"[bold]{bad.id}[/bold] (seq {bad.seq}): {bad.reason}",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if not result.ok:
        _out.print(
            f"[red]✗[/red] audit trail NOT protected: "
            f"{sum('trigger' in w for w in result.warnings)} append-only "
            f"trigger(s) missing in {path}; rows could be edited or deleted from here on.",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    _out.print(
        f"[green]✓[/green] audit chain intact: {result.rows} rows in {path}"
        + (f" (head {result.head_hash})" if result.head_hash else ""),
        soft_wrap=True,
    )


def _summary(row: dict[str, Any]) -> str:
    table = row.get("table")
    if table == "events":
        return f"{row.get('kind')} {row.get('tool') or ''} → {row.get('outcome')}"
    if table == "order_events":
        parts = [row.get("event"), row.get("side"), row.get("quantity"), row.get("symbol")]
        if row.get("order_id") is not None:
            parts.append(f"#{row['order_id']}")
        if row.get("status"):
            parts.append(f"[{row['status']}]")
        return " ".join(str(p) for p in parts if p is not None)
    return " ".join(
        str(p)
        for p in (
            row.get("kind"),
            row.get("exec_id"),
            row.get("side"),
            row.get("quantity"),
            row.get("symbol"),
            row.get("price") or row.get("commission"),
        )
        if p is not None
    )


@audit_app.command("tail")
def tail_cmd(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many rows.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    db: DbOption = None,
) -> None:
    """Show the newest rows across all tables (oldest of them first)."""
    import orjson

    from ibkr_mcp.audit.ops import tail

    try:
        rows = tail(_db(db, as_json=as_json), n)
    except AuditUnavailableError as exc:
        raise _fail(exc, as_json=as_json) from None
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode() + "\n")
        return
    table = Table(title="Audit trail (newest last)")
    for column in ("seq", "timestamp", "table", "correlation", "what"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["seq"]),
            str(row["ts"]),
            str(row["table"]),
            str(row.get("correlation_id") or "-"),
            _summary(row),
        )
    _out.print(table)


@audit_app.command("export")
def export_cmd(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv or jsonl.", case_sensitive=False)
    ] = "jsonl",
    table: Annotated[
        str | None,
        typer.Option(
            "--table", help="events, order_events, fills, orders or audit (default: all rows)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (default: stdout).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Export audit rows as CSV or JSON Lines."""
    from ibkr_mcp.audit.ops import export

    fmt = fmt.lower()
    if fmt not in ("csv", "jsonl"):
        _err.print(f"[red]✗[/red] --format must be csv or jsonl, not {fmt!r}")
        raise typer.Exit(2)
    kind: Literal["csv", "jsonl"] = "csv" if fmt == "csv" else "jsonl"
    if output is not None:
        _output_file(output, "--out")
    path = _db(db)
    try:
        if output is None:
            count = export(path, kind, sys.stdout, table=table)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                count = export(path, kind, fh, table=table)
    except AuditUnavailableError as exc:
        raise _fail(exc) from None
    except OSError as exc:  # permissions, a full disk: after the checks above
        if output is None:
            raise
        raise _write_failed(output, "--out", exc) from None
    except ValueError as exc:
        _err.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(2) from None
    _err.print(f"[green]✓[/green] exported {count} rows" + (f" to {output}" if output else ""))


@audit_app.command("backup")
def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="New file to write the copy to.")],
    db: DbOption = None,
) -> None:
    """Copy the audit database safely (SQLite online backup) and verify the copy."""
    from ibkr_mcp.audit.ops import backup
    from ibkr_mcp.audit.verify import verify_file

    if dest.is_dir():
        raise _usage(f"{dest} is a directory; name the new backup file.")
    if any(p.exists() and not p.is_dir() for p in dest.parents):
        raise _usage(f"{dest}: a parent of it is a file, not a directory.")
    path = _db(db)
    try:
        backup(path, dest)
        result = verify_file(dest, _key(None))
    except AuditUnavailableError as exc:
        raise _fail(exc) from None
    except FileExistsError as exc:
        _err.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(2) from None
    status = "[green]✓[/green] verified" if result.ok else "[red]✗[/red] copy does NOT verify"
    _out.print(f"{status}: backed up {result.rows} rows to {dest}", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)
