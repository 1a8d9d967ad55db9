"""gateway package: the only code that talks to IB (through ib_async)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any


class DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a module a dependency imports but rarely uses.

    The real module is imported the first time any attribute not set here is read (``np.nan``,
    ``numpy.__path__`` for a submodule import, ``from numpy import x``); its names are then
    copied here and this object becomes a plain module, so the dependency's reference behaves
    as the real module from then on (without this hook).
    """

    _lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Only the hand-back is under the lock: the import itself runs outside it, where the
        # import system serialises concurrent importers (with its own deadlock detection).
        with self._lock:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        self.__class__ = types.ModuleType  # type: ignore[assignment]  # loaded: no more hook
        return getattr(real, name)


def defer_import(name: str) -> None:
    """Put a ``DeferredModule`` for ``name`` in ``sys.modules`` (no-op if imported or absent)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    module = DeferredModule(name)
    # The import system checks the spec of a module found in sys.modules (not initialising).
    module.__spec__ = spec
    sys.modules[name] = module


# eventkit (under ib_async) imports numpy at module level for array operators nothing here
# uses: ~0.1 s of the first tool call's wait on ``serve`` (issue 15: nothing the stdio path does
# not use is imported on it). Code that does use numpy gets the real module on first use.
defer_import("numpy")
