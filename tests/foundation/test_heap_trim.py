"""Freed heap memory goes back to the OS (glibc's malloc_trim), where the platform has it."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from ibkr_mcp.config import SettingsError, load_settings
from ibkr_mcp.runtime import _libc, trim_heap


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_memory_goes_back_to_the_os() -> None:
    assert _libc() is not None
    # Many small blocks (malloc'd, not mmap'd), freed but for every 64th: the holes stay in
    # the heap until trimmed.
    blocks = [bytearray(600) for _ in range(100_000)]
    kept = blocks[::64]
    del blocks
    before = _rss_kib()
    assert trim_heap() is True
    assert _rss_kib() < before - 10_000, "at least ~10 MB of the ~60 MB freed went back"
    assert len(kept) == 1563


def test_unsupported_platforms_say_so() -> None:
    # Where there is no glibc the call does nothing and says so (the runtime stops asking).
    assert trim_heap() is (_libc() is not None)
    if not sys.platform.startswith("linux"):
        assert _libc() is None


def test_heap_trim_interval_is_validated() -> None:
    assert load_settings(_env_file=None).HEAP_TRIM_SECONDS == 30.0
    assert load_settings(_env_file=None, HEAP_TRIM_SECONDS=0).HEAP_TRIM_SECONDS == 0
    with pytest.raises(SettingsError, match="HEAP_TRIM_SECONDS"):
        load_settings(_env_file=None, HEAP_TRIM_SECONDS=-1)
