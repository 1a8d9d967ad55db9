"""numpy, imported by eventkit under ib_async but unused here, loads only at its first use."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_the_gateway_import_does_not_load_numpy() -> None:
    out = _run(
        "import sys\n"
        "import ibkr_mcp.gateway.ib_gateway\n"
        "print(type(sys.modules['numpy']).__name__, 'numpy._core' in sys.modules)\n"
    )
    assert out == "DeferredModule False"


def test_numpy_users_get_the_real_module_at_first_use() -> None:
    out = _run(
        "import sys\n"
        "import ibkr_mcp.gateway.ib_gateway\n"
        "import eventkit\n"
        "from eventkit.ops import array\n"
        "event = eventkit.Event()\n"
        "seen = []\n"
        "event.array(2).connect(lambda a: seen.append(a.tolist()))\n"
        "event.emit(1); event.emit(2)\n"
        "import numpy as np\n"
        "import numpy.linalg as la\n"
        "print(seen, float(la.norm([3, 4])), np.nan != np.nan,\n"
        "      type(sys.modules['numpy']).__name__, array.np.ndarray is np.ndarray)\n"
    )
    assert out == "[[1], [1, 2]] 5.0 True module True"
