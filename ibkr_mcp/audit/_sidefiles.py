"""Checks on the audit database's ``-wal``/``-shm`` files before each use (no SIGBUS)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sqlite3
import threading
from pathlib import Path
from typing import Final

#: The files SQLite keeps next to a WAL-mode database while it is open.
SUFFIXES: Final[tuple[str, ...]] = ("-wal", "-shm")


class SideFileError(sqlite3.OperationalError):
    """The ``-wal`` or ``-shm`` file was removed, replaced, truncated or made unwritable."""


class SideFiles:
    """Remembers the ``-wal``/``-shm`` files of an open database and checks them before use.

    SQLite memory-maps ``-shm``: if that file is truncated (or its disk cannot back the pages)
    the next access is a SIGBUS that kills the whole process, with no exception to catch. So
    every use of a connection is preceded by :meth:`check`, which raises instead. A removed,
    replaced or truncated file poisons the connections for good (touching them again, even to
    close them, could fault): the remedy is a restart of every process using the database.

    Args:
        path: The database file.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._poisoned: str | None = None
        self._lock = threading.Lock()

    @property
    def poisoned(self) -> bool:
        """True once a side file was removed, replaced or truncated under the open database."""
        return self._poisoned is not None

    def _file(self, suffix: str) -> str:
        return f"{self._path}{suffix}"

    def remember(self) -> None:
        """Record each side file's identity and size (after a successful use)."""
        with self._lock:
            if self._poisoned is not None:
                return
            for suffix in SUFFIXES:
                try:
                    st = os.stat(self._file(suffix))
                except OSError:
                    continue
                known = self._seen.get(suffix)
                size = st.st_size
                if known is not None and known[:2] != (st.st_dev, st.st_ino):
                    # Replaced after this use's check (the file this use wrote is another
                    # one): never adopt it, or the next check would pass on it.
                    self._poisoned = (
                        f"{self._file(suffix)} was replaced while the database was open"
                    )
                    return
                if known is not None:
                    size = max(size, known[2])
                self._seen[suffix] = (st.st_dev, st.st_ino, size)

    def check(self) -> None:
        """Raise before SQLite touches a side file that could fault or fail.

        Raises:
            SideFileError: If a side file was removed, replaced, truncated (``-shm``) or is
                not writable.
        """
        with self._lock:
            if self._poisoned is not None:
                raise SideFileError(self._poisoned)
            for suffix, (dev, ino, size) in self._seen.items():
                name = self._file(suffix)
                try:
                    st = os.stat(name)
                except OSError:
                    self._poisoned = f"{name} was removed while the database was open"
                    raise SideFileError(self._poisoned) from None
                if (st.st_dev, st.st_ino) != (dev, ino):
                    self._poisoned = f"{name} was replaced while the database was open"
                    raise SideFileError(self._poisoned)
                if suffix == "-shm" and st.st_size < size:
                    self._poisoned = (
                        f"{name} was truncated while the database was open "
                        f"({st.st_size} < {size} bytes)"
                    )
                    _restore_size(name, size)
                    raise SideFileError(self._poisoned)
                if not os.access(name, os.W_OK):
                    raise SideFileError(f"{name} is not writable")

    def retire(self, conn: sqlite3.Connection) -> None:
        """Close ``conn``, unless it is poisoned: then it is kept alive for good.

        Closing (or garbage-collecting) a connection whose mapped ``-shm`` lost its pages would
        fault; an extra reference that is never released means it is never finalised.
        """
        if self._poisoned is None:
            conn.close()
            return
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))


def _restore_size(name: str, size: int) -> None:
    """Give a truncated ``-shm`` its pages back (zeros), so a mapped page can never fault.

    Best effort: SQLite treats a zeroed wal-index as stale and rebuilds it from the WAL.
    """
    with contextlib.suppress(OSError):
        os.truncate(name, size)
