"""The audit chain's HMAC key: 32 random bytes as hex in a 0600 file kept outside the database.

Whoever can write the database but lacks the key cannot re-hash edited rows undetected. The key
is never logged; only its id (a short hash) appears in output.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from ibkr_mcp.errors import AuditUnavailableError

#: ``row_hash`` prefix of a keyed (HMAC-SHA256) row; plain SHA-256 rows have no prefix.
KEYED_PREFIX: Final[str] = "k1:"
KEY_BYTES: Final[int] = 32


def key_id(key: bytes) -> str:
    """A short, non-reversible id of the key (for output and audit rows, never the key)."""
    return "key_" + hashlib.sha256(b"ibkr-mcp-audit-key-id" + key).hexdigest()[:12]


def keyed_digest(key: bytes, body: bytes) -> str:
    """``k1:`` + HMAC-SHA256(key, body) hex."""
    return KEYED_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def _bad(path: Path, why: str) -> AuditUnavailableError:
    return AuditUnavailableError(
        f"The audit key {path} is unusable: {why}.",
        remedy="Restore the key file from your backup (never edit it); without it the chain "
        "cannot be verified. Only for a new audit database may a missing key be created anew.",
        details={"path": str(path)},
    )


def read_key(path: Path) -> bytes | None:
    """The key in ``path``, or ``None`` if the file does not exist.

    Raises:
        AuditUnavailableError: If the file is not 64 hex characters or is group/world readable.
    """
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, str(exc)) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise _bad(path, f"mode {stat.filemode(st.st_mode)} lets others read it (chmod 600)")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise _bad(path, "not hex") from None
    if len(key) != KEY_BYTES:
        raise _bad(path, f"{len(key)} bytes instead of {KEY_BYTES}")
    return key


def load_or_create_key(path: Path) -> bytes:
    """Read the key, creating it (0600, exclusively) on first use.

    Raises:
        AuditUnavailableError: If it cannot be read or created.
    """
    existing = read_key(path)
    if existing is not None:
        return existing
    key = secrets.token_bytes(KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: use theirs.
        return read_key(path) or key
    except OSError as exc:
        raise _bad(path, f"cannot create it: {exc}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
