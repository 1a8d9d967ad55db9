"""Append-only, hash-chained SQLite audit trail (tool calls, gate decisions, orders, fills)."""

from ibkr_mcp.audit._codec import canonical_json, mask_secrets, row_hash, token_id
from ibkr_mcp.audit._rows import Row
from ibkr_mcp.audit._store import StaleCountsError
from ibkr_mcp.audit.log import AuditLog
from ibkr_mcp.audit.ops import backup, export, tail
from ibkr_mcp.audit.verify import BadRow, VerifyResult, verify_file

__all__ = [
    "AuditLog",
    "BadRow",
    "Row",
    "StaleCountsError",
    "VerifyResult",
    "backup",
    "canonical_json",
    "export",
    "mask_secrets",
    "row_hash",
    "tail",
    "token_id",
    "verify_file",
]
