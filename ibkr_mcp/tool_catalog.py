"""The MCP tool list without importing the tools: cached entries, keyed by the installed code."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
from loguru import logger

from ibkr_mcp import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import BaseModel

    from ibkr_mcp.services import Services
    from ibkr_mcp.tools.registry import CallResult, Progress, Registry, Surface

#: Bumped when an entry's shape changes (old cache files are then ignored).
FORMAT: Final = 2
_PACKAGE = Path(__file__).resolve().parent


def catalog_key() -> str:
    """What the cached tool list was built from: version, format and every source file's stat.

    Any edit, reinstall or upgrade of the package changes a file's size or mtime, so a cache
    file can never describe other code than the one running.
    """
    digest = hashlib.sha256(f"{__version__}:{FORMAT}".encode())
    for root, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                stat = os.stat(path)
                rel = os.path.relpath(path, _PACKAGE)
                digest.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def catalog_path(cache_dir: Path) -> Path:
    """The cache file for the running code under ``cache_dir``."""
    return cache_dir / f"tools-{catalog_key()}.json"


def entries_from(registry: Registry) -> list[dict[str, Any]]:
    """Every tool's MCP description (all toolsets and surfaces; filtered when served)."""
    from ibkr_mcp.mcp_server import compact_schema
    from ibkr_mcp.tools import tool_modules

    modules = tool_modules()
    return [
        {
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "parameters": compact_schema(spec.input_model),
            "annotations": {
                "title": spec.title,
                "read_only_hint": spec.read_only,
                "destructive_hint": spec.destructive,
                "idempotent_hint": spec.idempotent,
                "open_world_hint": spec.open_world,
            },
            "tags": sorted(spec.tags),
            "toolset": spec.effective_toolset,
            "surfaces": sorted(spec.surfaces),
            "module": modules[spec.name],
        }
        for spec in registry
    ]


def load_entries(path: Path) -> list[dict[str, Any]] | None:
    """The cached entries at ``path``, or ``None`` if absent or unreadable (then rebuilt)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    entries = data.get("tools")
    return entries if isinstance(entries, list) else None


def save_entries(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write the cache atomically; a cache that cannot be written is only slower next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps({"format": FORMAT, "version": __version__, "tools": entries}))
        os.replace(tmp, path)
        for old in path.parent.glob("tools-*.json"):
            if old != path:
                old.unlink(missing_ok=True)  # another build's list: never read again
    except OSError as exc:
        logger.debug("tool list cache not written ({}): {}", path, exc)


class LazyRegistry:
    """The enabled registry, imported on first use (the tool list was served from the cache).

    A call imports only the module declaring its tool (the first ``get_quote`` of a session
    does not wait for the order tools to import); anything else loads the whole registry.

    Args:
        toolsets: The enabled toolsets.
        surface: The surface the registry serves.
        registry: The registry, when it was already built.
        modules: Each tool's module (``tools.tool_modules``), from the cached entries.
    """

    def __init__(
        self,
        toolsets: frozenset[str],
        surface: str,
        registry: Registry | None = None,
        modules: Mapping[str, str] | None = None,
    ) -> None:
        self.toolsets = toolsets
        self.surface = surface
        self._registry = None if registry is None else registry.enabled(toolsets, surface)
        self._modules = dict(modules or {})
        self._parts: dict[str, Registry] = {}

    def load(self) -> Registry:
        """The enabled registry (imported and built at the first call)."""
        if self._registry is None:
            from ibkr_mcp.tools import build_registry

            self._registry = build_registry().enabled(self.toolsets, self.surface)
        return self._registry

    def _for(self, name: str) -> Registry:
        """The registry that can call ``name``: its module's tools, else the whole registry."""
        module = self._modules.get(name)
        if self._registry is not None or module is None:
            return self.load()  # an unknown name's error lists every tool
        part = self._parts.get(module)
        if part is None:
            from ibkr_mcp.tools import build_registry

            part = self._parts[module] = build_registry((module,)).enabled(
                self.toolsets, self.surface
            )
        # A tool of a disabled toolset: the whole registry's error lists the enabled tools.
        return part if name in part else self.load()

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | BaseModel | None,
        *,
        services: Services,
        surface: Surface,
        cid: str | None = None,
        progress: Progress | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> CallResult[Any]:
        """``Registry.call`` on the registry holding ``name``."""
        return await self._for(name).call(
            name,
            arguments,
            services=services,
            surface=surface,
            cid=cid,
            progress=progress,
            origin=origin,
        )


def mcp_entries(
    cache_dir: Path, toolsets: frozenset[str]
) -> tuple[list[dict[str, Any]], LazyRegistry]:
    """The enabled tools' MCP entries (from the cache when it matches the code) and a registry.

    Args:
        cache_dir: Where the cache file lives.
        toolsets: The enabled toolsets.
    """
    path = catalog_path(cache_dir)
    entries = load_entries(path)
    lazy: LazyRegistry
    if entries is None:
        from ibkr_mcp.tools import build_registry

        registry = build_registry()
        entries = entries_from(registry)
        save_entries(path, entries)
        lazy = LazyRegistry(toolsets, "mcp", registry)
    else:
        modules = {e["name"]: e["module"] for e in entries if isinstance(e.get("module"), str)}
        lazy = LazyRegistry(toolsets, "mcp", modules=modules)
    chosen = [e for e in entries if e["toolset"] in toolsets and "mcp" in e["surfaces"]]
    return chosen, lazy
