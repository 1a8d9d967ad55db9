"""The MCP server, generated from the tool registry (FastMCP 4): no tool is written twice."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from fastmcp import FastMCP
from fastmcp.exceptions import DisabledError, NotFoundError
from fastmcp.prompts.base import PromptResult
from fastmcp.resources.base import ResourceResult
from fastmcp.server.dependencies import get_context
from fastmcp.tools.base import Tool, ToolResult
from fastmcp.utilities.versions import VersionSpec
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent, ToolAnnotations
from pydantic import BaseModel

from ibkr_mcp import __version__
from ibkr_mcp.config import Settings
from ibkr_mcp.errors import IbkrMcpError, json_safe
from ibkr_mcp.services import Services, ServicesHandle

if TYPE_CHECKING:
    from pathlib import Path

    from ibkr_mcp.tool_catalog import LazyRegistry
    from ibkr_mcp.tools.registry import Registry, ToolSpec

INSTRUCTIONS = (
    "Interactive Brokers through one safety gate chain. Read tools are always safe. To trade: "
    "preview_order (returns a confirmation_token), then place_order with that token and a "
    "fresh idempotency_key. Quotes say whether they are live or delayed. Errors start with a "
    "stable code (e.g. GATE_REFUSED) and carry a remedy."
)


def _merge_any_of(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf`` of simply typed branches as one ``type`` list (a third of the characters).

    Type-specific keywords (``pattern``, ``exclusiveMinimum``) only apply to their own type,
    so merging keeps the meaning; a Decimal's string branch is dropped (send numbers), and an
    ``enum`` gains ``null`` when null is allowed.
    """
    branches = node.get("anyOf")
    if not isinstance(branches, list) or not all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in branches
    ):
        return node
    types = [b["type"] for b in branches]
    if "number" in types and "string" in types:
        # Decimal text is still accepted (and documented in OpenAPI); agents send numbers.
        branches = [b for b in branches if b["type"] != "string"]
        types = [b["type"] for b in branches]
    merged: dict[str, Any] = {}
    for branch in branches:
        for key, value in branch.items():
            if key != "type" and key in merged and merged[key] != value:
                return node
            merged[key] = value
    merged["type"] = types[0] if len(types) == 1 else types
    if "enum" in merged and "null" in types:
        merged["enum"] = [*merged["enum"], None]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**merged, **rest}


def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without titles or null defaults, simple ``anyOf`` merged."""
    schema = model.model_json_schema()

    def strip(node: Any, parent_key: str | None = None) -> Any:
        if isinstance(node, dict):
            if parent_key != "properties":
                node = _merge_any_of(node)
            return {
                k: strip(v, k)
                for k, v in node.items()
                if not (k == "title" and parent_key != "properties" and isinstance(v, str))
                and not (k == "default" and v is None and parent_key != "properties")
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    out: dict[str, Any] = strip(schema)
    out.pop("description", None)  # the tool's own description already says it
    out.setdefault("properties", {})
    return out


def dump_json(model: BaseModel) -> str:
    """Compact JSON for a model (Decimals as JSON numbers, datetimes ISO-8601)."""
    return orjson.dumps(model.model_dump(mode="json")).decode()


def error_text(error: IbkrMcpError) -> str:
    """The text an agent sees for an error: code, message, remedy, correlation id."""
    parts = [f"{error.code}: {error.message}"]
    if error.remedy:
        parts.append(f"Remedy: {error.remedy}")
    extra = {k: v for k, v in json_safe(error.details).items() if k != "correlation_id"}
    if extra:
        parts.append("Details: " + orjson.dumps(extra, default=str).decode())
    if "correlation_id" in error.details:
        parts.append(f"Correlation id: {error.details['correlation_id']}")
    return "\n".join(parts)


async def _report_progress(progress: float, total: float | None, message: str | None) -> None:
    """MCP progress notification for the current request (sent only if the client asked)."""
    try:
        context = get_context()
    except RuntimeError:
        return
    await context.report_progress(progress, total, message)


#: JSON-RPC error codes the MCP spec names (resource not found; invalid params).
RESOURCE_NOT_FOUND = -32002
INVALID_PARAMS = -32602


class IbkrFastMCP(FastMCP[Any]):
    """FastMCP with the spec's protocol errors for unknown names and missing arguments.

    * an unknown resource is ``-32002`` (resource not found), as the MCP spec names it;
    * an unknown tool is a JSON-RPC ``-32602`` protocol error, not a tool result;
    * a prompt called without a required argument is ``-32602`` naming the argument (FastMCP
      would mask it as an internal error).
    """

    #: Set once a client asks for anything (its tool list, a call, a resource): ``serve``
    #: opens the runtime then, so its imports never stand between a client and the tool list.
    demand: asyncio.Event | None = None

    #: Registers the resources and prompts: ``serve`` defers them to the first request that
    #: needs either (clients ask for the tool list first; these cost start-up time).
    pending_components: Callable[[], None] | None = None

    def _demanded(self) -> None:
        if self.demand is not None:
            self.demand.set()

    def _components(self) -> None:
        pending, self.pending_components = self.pending_components, None
        if pending is not None:
            pending()

    async def list_resources(self, *args: Any, **kwargs: Any) -> Any:
        """List the resources (registered at the first request that needs them)."""
        self._components()
        return await super().list_resources(*args, **kwargs)

    async def list_resource_templates(self, *args: Any, **kwargs: Any) -> Any:
        """List the resource templates (registered at the first request that needs them)."""
        self._components()
        return await super().list_resource_templates(*args, **kwargs)

    async def get_resource(self, *args: Any, **kwargs: Any) -> Any:
        """One resource (registered at the first request that needs them)."""
        self._components()
        return await super().get_resource(*args, **kwargs)

    async def get_resource_template(self, *args: Any, **kwargs: Any) -> Any:
        """One resource template (registered at the first request that needs them)."""
        self._components()
        return await super().get_resource_template(*args, **kwargs)

    async def list_prompts(self, *args: Any, **kwargs: Any) -> Any:
        """List the prompts (registered at the first request that needs them)."""
        self._components()
        return await super().list_prompts(*args, **kwargs)

    async def get_prompt(self, *args: Any, **kwargs: Any) -> Any:
        """One prompt (registered at the first request that needs them)."""
        self._components()
        return await super().get_prompt(*args, **kwargs)

    async def list_tools(self, *, run_middleware: bool = True) -> Sequence[Tool]:
        """List the tools (and note that a client is here)."""
        try:
            return await super().list_tools(run_middleware=run_middleware)
        finally:
            self._demanded()

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        version: VersionSpec | None = None,
        run_middleware: bool = True,
    ) -> ToolResult:
        """Call a tool; an unknown (or disabled) one is a protocol error."""
        self._demanded()
        try:
            return await super().call_tool(
                name, arguments, version=version, run_middleware=run_middleware
            )
        except (NotFoundError, DisabledError):
            raise MCPError(
                code=INVALID_PARAMS, message=f"Unknown tool: {name!r}", data={"tool": name}
            ) from None

    async def read_resource(
        self, uri: str, *, version: VersionSpec | None = None, run_middleware: bool = True
    ) -> ResourceResult:
        """Read a resource; an unknown URI is ``-32002``."""
        self._demanded()
        self._components()
        try:
            return await super().read_resource(uri, version=version, run_middleware=run_middleware)
        except (NotFoundError, DisabledError):
            raise MCPError(
                code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}", data={"uri": uri}
            ) from None

    async def render_prompt(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        version: VersionSpec | None = None,
        run_middleware: bool = True,
    ) -> PromptResult:
        """Render a prompt; missing required arguments are ``-32602`` naming them."""
        self._components()
        prompt = await self.get_prompt(name, version=version)
        if prompt is not None:
            given = arguments or {}
            missing = [a.name for a in prompt.arguments or [] if a.required and a.name not in given]
            if missing:
                raise MCPError(
                    code=INVALID_PARAMS,
                    message=f"Prompt {name!r} needs the argument(s): {', '.join(missing)}.",
                    data={"prompt": name, "missing": missing},
                )
        return await super().render_prompt(
            name, arguments, version=version, run_middleware=run_middleware
        )


def _info_pair(info: Any) -> tuple[str | None, str | None]:
    if info is None:
        return None, None
    if isinstance(info, dict):
        return info.get("name"), info.get("version")
    return getattr(info, "name", None), getattr(info, "version", None)


def mcp_origin() -> dict[str, Any]:
    """The MCP client's name, version and session of the current request (best effort)."""
    from fastmcp.server.dependencies import get_context

    out: dict[str, Any] = {}
    try:
        ctx = get_context()
    except RuntimeError:
        return out
    with contextlib.suppress(RuntimeError):
        out["session"] = ctx.session_id
    info: Any = None
    try:
        params = ctx.session.client_params
        info = None if params is None else params.client_info
    except (RuntimeError, AttributeError):
        info = None
    if info is None:
        rc = ctx.request_context
        meta = getattr(rc, "meta", None) if rc is not None else None
        if isinstance(meta, dict):
            info = next((v for k, v in meta.items() if "clientinfo" in k.lower()), None)
    name, version = _info_pair(info)
    out["client_name"], out["client_version"] = name, version
    return out


class RegistryTool(Tool):
    """A FastMCP tool whose call runs the registry pipeline (validation, gates, audit)."""

    registry: Any
    services: Any

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        """Run the registry pipeline; errors become MCP tool errors with code and remedy."""
        registry: Registry | LazyRegistry = self.registry
        handle: ServicesHandle = self.services
        try:
            services = await handle.get()
            result = await registry.call(
                self.name,
                arguments,
                services=services,
                surface="mcp",
                origin=mcp_origin(),
                progress=_report_progress,
            )
        except IbkrMcpError as exc:
            error = exc.to_dict()
            error.setdefault("remedy", None)
            error.setdefault("details", {})
            return ToolResult(
                content=[TextContent(type="text", text=error_text(exc))],
                # The same error, machine-readable: {code, message, remedy, details}.
                structured_content=error,
                meta={"error": exc.to_dict()},
                is_error=True,
            )
        data = result.output.model_dump(mode="json")
        if data.get("status") == "PENDING_APPROVAL":
            from ibkr_mcp.approval_prompt import ask_in_client

            asked = await ask_in_client(services, data)
            if isinstance(asked, ToolResult):
                return asked  # 2026-07-28: the input-required leg; the client retries
            data = asked
        return ToolResult(
            content=[TextContent(type="text", text=orjson.dumps(data).decode())],
            structured_content=data,
            meta={"correlation_id": result.correlation_id},
        )


def make_tool(
    spec: ToolSpec[Any, Any], registry: Registry, services: ServicesHandle
) -> RegistryTool:
    """The FastMCP tool for ``spec``: top-level arguments = the input model's fields."""
    return RegistryTool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=compact_schema(spec.input_model),
        # Output schemas would triple the tool list (35k vs 13k characters of agent context);
        # results still carry structured content and JSON text. See 03_DECISIONS.md.
        output_schema=None,
        annotations=ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=spec.open_world,
        ),
        tags=set(spec.tags),
        registry=registry,
        services=services,
    )


def make_cached_tool(
    entry: dict[str, Any], registry: LazyRegistry, services: ServicesHandle
) -> RegistryTool:
    """The FastMCP tool for a cached entry (``tool_catalog``): the same tool as ``make_tool``."""
    return RegistryTool(
        name=entry["name"],
        title=entry["title"],
        description=entry["description"],
        parameters=entry["parameters"],
        output_schema=None,
        annotations=ToolAnnotations(**entry["annotations"]),
        tags=set(entry["tags"]),
        registry=registry,
        services=services,
    )


def build_mcp(
    services: Services | ServicesHandle,
    registry: Registry | None = None,
    *,
    cache_dir: Path | None = None,
) -> FastMCP[Any]:
    """Build the MCP server: every registry tool, the resources and the prompts.

    Args:
        services: The running services, or a handle on services still opening (``serve``
            answers the MCP handshake and the tool list before the runtime is open).
        registry: The registry (default: every tool).
        cache_dir: Serve the tool list from the cache there (``tool_catalog``) and import the
            tools at their first call: ``serve`` on stdio, where start-up is user-visible.
    """
    from ibkr_mcp.prompts import register_prompts
    from ibkr_mcp.resources import register_resources

    toolsets = services.settings.enabled_toolsets
    handle = services if isinstance(services, ServicesHandle) else ServicesHandle.ready(services)
    mcp: FastMCP[Any] = IbkrFastMCP(
        name="ibkr-mcp", version=__version__, instructions=INSTRUCTIONS, mask_error_details=True
    )
    caller: Registry | LazyRegistry
    if registry is None and cache_dir is not None:
        from ibkr_mcp.tool_catalog import mcp_entries

        entries, caller = mcp_entries(cache_dir, toolsets)
        for entry in entries:
            mcp.add_tool(make_cached_tool(entry, caller, handle))
    else:
        from ibkr_mcp.tools import build_registry

        # A tool outside the enabled toolsets is absent, not merely refused (TOOLSETS, READ_ONLY).
        caller = (registry or build_registry()).enabled(toolsets, "mcp")
        for spec in caller:
            mcp.add_tool(make_tool(spec, caller, handle))

    def components() -> None:
        register_resources(mcp, caller, handle)
        register_prompts(mcp)

    if cache_dir is not None and isinstance(mcp, IbkrFastMCP):
        mcp.pending_components = components  # serve: at the first request that needs them
    else:
        components()
    return mcp


#: Seconds ``serve`` waits for a client's first request before opening the runtime anyway.
RUNTIME_START_AFTER = 1.0
#: Seconds after the runtime opened that ``serve`` freezes its start-up heap (``freeze_heap``).
FREEZE_AFTER = 2.0


async def serve_stdio(
    settings: Settings, *, sim: bool, sim_process: subprocess.Popen[bytes] | None = None
) -> None:
    """Serve MCP on stdio at once; open the runtime (gateway, audit, simulator) concurrently.

    The handshake and ``tools/list`` need nothing of the runtime, so they are answered while it
    opens; the first call that needs it waits, bounded by the connect timeout plus the start-up
    wait, and fails with a clear error past that.
    """
    wait = 5.0 if sim else 0.0
    handle = ServicesHandle(
        settings, timeout=settings.IBKR_CONNECT_TIMEOUT + wait + RUNTIME_START_AFTER
    )
    mcp = build_mcp(handle, cache_dir=settings.cache_dir)
    demand = asyncio.Event()
    if isinstance(mcp, IbkrFastMCP):
        mcp.demand = demand
    stop = asyncio.Event()

    async def runtime() -> None:
        # The runtime opens once a client asked for something (at the latest after
        # RUNTIME_START_AFTER): a client's handshake and tool list never wait behind its
        # imports and connect, which take the one thread of the process while they run.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(demand.wait(), RUNTIME_START_AFTER)
        await asyncio.sleep(0.005)  # the tool list's answer is written out first
        from ibkr_mcp.runtime import freeze_heap, open_runtime

        try:
            run, embedded = settings, sim
            if sim_process is not None:
                run, embedded = await _child_settings(settings, sim_process), False
            wait = 5.0 if sim else None
            async with open_runtime(run, sim=embedded, wait_connected=wait) as services:
                handle.set(services)
                # Later, not now: a full collection here would stand before the first call.
                asyncio.get_running_loop().call_later(FREEZE_AFTER, freeze_heap)
                await stop.wait()
        except Exception as exc:  # noqa: BLE001 - the server keeps answering; calls name the cause
            from loguru import logger

            if handle.current is None:
                logger.error("runtime failed to start: {}", exc)
                handle.fail(exc)
            else:
                logger.error("runtime failed while stopping: {}", exc)

    task = asyncio.create_task(runtime(), name="ibkr-mcp-runtime")
    try:
        await mcp.run_stdio_async(show_banner=False)
    finally:
        stop.set()
        await task


async def _child_settings(settings: Settings, child: subprocess.Popen[bytes]) -> Settings:
    """The settings pointed at the simulator process once it announced its port."""
    from ibkr_mcp.sim_process import read_port

    assert child.stdout is not None
    port = await asyncio.wait_for(
        asyncio.to_thread(read_port, child.stdout), settings.IBKR_CONNECT_TIMEOUT + 5.0
    )
    return settings.model_copy(update={"IBKR_HOST": "127.0.0.1", "IBKR_PORT": port})


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """End the simulator process: close its stdin (it stops), kill it if it lingers."""
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def run_stdio(
    settings: Settings, *, sim: bool, sim_process: subprocess.Popen[bytes] | None = None
) -> None:
    """Blocking entry point for ``ibkr-mcp serve``.

    Args:
        settings: Effective settings.
        sim: Serve against the simulator.
        sim_process: The simulator's own process (``sim_process.spawn``); without it an
            embedded simulator runs in this process.
    """
    try:
        asyncio.run(serve_stdio(settings, sim=sim, sim_process=sim_process))
    finally:
        # However the loop ended (EOF on stdin, Ctrl-C, an error): the simulator ends too.
        if sim_process is not None:
            _stop_child(sim_process)
