"""The tool registry: each capability declared once, called through one pipeline by every surface.

Pipeline (whatever the surface: MCP, HTTP, CLI): new correlation id → validate the input model →
handler (order tools run the safety gate chain inside their handler) → audit record → result.
Invalid input becomes ``InvalidInputError`` naming the field; an unexpected exception is logged
with its traceback on stderr and masked for the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from loguru import logger
from pydantic import BaseModel, ValidationError

from ibkr_mcp import metrics
from ibkr_mcp.errors import IbkrMcpError, InvalidInputError
from ibkr_mcp.logs import correlation_id, new_correlation_id
from ibkr_mcp.origin import call_origin

if TYPE_CHECKING:
    from ibkr_mcp.audit._codec import JsonText
    from ibkr_mcp.config import Settings
    from ibkr_mcp.services import Services

Surface = Literal["mcp", "http", "cli", "internal"]
HttpMethod = Literal["GET", "POST"]

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


#: Reports progress of a long call: (progress, total, message). MCP sends notifications.
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


async def _no_progress(progress: float, total: float | None, message: str | None) -> None:
    """HTTP and CLI simply wait: progress goes nowhere."""


@dataclass(frozen=True)
class CallContext:
    """What a handler knows about the call besides its input."""

    services: Services
    correlation_id: str
    surface: Surface
    tool: str
    origin: Mapping[str, Any] = field(default_factory=dict)
    progress: Progress = _no_progress


Handler = Callable[[In, CallContext], Awaitable[Out]]


@dataclass(frozen=True)
class ToolSpec(Generic[In, Out]):
    """One capability, declared once; every surface is generated from it."""

    name: str
    description: str
    input_model: type[In]
    output_model: type[Out]
    handler: Handler[In, Out]
    http_method: HttpMethod
    http_path: str
    cli_name: str
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = True
    #: Input fields given positionally on the command line (e.g. ``ibkr-mcp quote AAPL``).
    cli_arguments: tuple[str, ...] = ()
    title: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    #: ``read``, ``trade`` or ``admin`` (TOOLSETS); default: read-only tools ``read``, else
    #: ``trade``. A tool outside the enabled toolsets is absent from every surface.
    toolset: Literal["read", "trade", "admin"] | None = None
    #: Surfaces the tool is generated for (admin tools: MCP only; HTTP and CLI have their own
    #: human-only control routes and commands).
    surfaces: frozenset[str] = frozenset({"mcp", "http", "cli"})

    @property
    def effective_toolset(self) -> str:
        """The toolset this tool belongs to."""
        if self.toolset is not None:
            return self.toolset
        return "read" if self.read_only else "trade"


@dataclass(frozen=True)
class CallResult(Generic[Out]):
    """A successful call: the output model and the call's correlation id."""

    output: Out
    correlation_id: str
    duration_ms: float


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False):
        # Model validators name their fields (``tools.common.field_errors``); an empty location
        # is left only for a rule no one field breaks (modify_order naming nothing to change).
        loc = ".".join(str(p) for p in err["loc"]) or "(input)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not accepted by this tool)"
        errors.append({"field": loc, "message": msg, "type": err["type"]})
    return errors


def validation_error(tool: str, exc: ValidationError) -> InvalidInputError:
    """Turn a pydantic ``ValidationError`` into ``InvalidInputError`` naming every bad field."""
    errors = _field_errors(exc)
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return InvalidInputError(
        f"Invalid input for {tool}: {summary}",
        remedy="Fix the named field(s) and call again.",
        details={"errors": errors},
    )


class Registry:
    """Every tool, by name, and the one call pipeline."""

    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec[Any, Any]] = {}

    def register(self, spec: ToolSpec[Any, Any]) -> None:
        """Add ``spec``; names, HTTP routes and CLI names must be unique."""
        if spec.name in self._specs:
            raise ValueError(f"tool {spec.name!r} registered twice")
        for other in self._specs.values():
            if (other.http_method, other.http_path) == (spec.http_method, spec.http_path):
                raise ValueError(f"route {spec.http_method} {spec.http_path} used twice")
            if other.cli_name == spec.cli_name:
                raise ValueError(f"CLI name {spec.cli_name!r} used twice")
        self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[ToolSpec[Any, Any]]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def enabled(self, toolsets: frozenset[str], surface: str) -> Registry:
        """A registry with only the tools of ``toolsets`` generated for ``surface``."""
        out = Registry()
        for spec in self:
            if spec.effective_toolset in toolsets and surface in spec.surfaces:
                out.register(spec)
        return out

    def get(self, name: str) -> ToolSpec[Any, Any]:
        """The spec named ``name``; ``InvalidInputError`` if there is none."""
        try:
            return self._specs[name]
        except KeyError:
            raise InvalidInputError(
                f"Unknown tool {name!r}.", remedy=f"Use one of: {', '.join(self._specs)}."
            ) from None

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
        """Run one tool call through the pipeline.

        Args:
            name: The tool's name.
            arguments: Raw arguments (validated here) or an already-built input model.
            services: Injected services.
            surface: Which surface the call came from (recorded in the audit trail).
            cid: A correlation id supplied by the caller (HTTP ``X-Correlation-ID``).
            progress: Where long-running handlers report progress (MCP notifications).
            origin: Who is calling beyond the surface (MCP client name/version, session);
                recorded on every order row of the call.

        Returns:
            The output model with the call's correlation id.

        Raises:
            IbkrMcpError: Every failure, with ``details["correlation_id"]`` set.
        """
        spec = self.get(name)
        call_id = cid or new_correlation_id()
        token = correlation_id.set(call_id)
        who = {"surface": surface, "correlation_id": call_id, **(origin or {})}
        origin_token = call_origin.set(who)
        started = time.perf_counter()
        raw_args: dict[str, Any] = {}
        outcome = "ok"
        try:
            if isinstance(arguments, BaseModel):
                raw_args = arguments.model_dump(mode="json")
                params = spec.input_model.model_validate(raw_args)
            else:
                raw_args = dict(arguments or {})
                try:
                    params = spec.input_model.model_validate(raw_args)
                except ValidationError as exc:
                    raise validation_error(name, exc) from None
            ctx = CallContext(
                services=services,
                correlation_id=call_id,
                surface=surface,
                tool=name,
                origin=who,
                progress=progress or _no_progress,
            )
            output = await spec.handler(params, ctx)
            duration_ms = (time.perf_counter() - started) * 1000
            return CallResult(output=output, correlation_id=call_id, duration_ms=duration_ms)
        except IbkrMcpError as exc:
            outcome = f"error:{exc.code}"
            exc.details.setdefault("correlation_id", call_id)
            logger.info("{} failed: {}", name, exc)
            raise
        except Exception as exc:  # noqa: BLE001 - masked for the caller, logged in full here
            outcome = "error:INTERNAL_ERROR"
            logger.opt(exception=exc).error("{} raised an unexpected exception", name)
            raise IbkrMcpError(
                f"Internal error in {name}; nothing about it is safe to assume.",
                remedy=f"See the server log (stderr) for correlation id {call_id}.",
                details={"correlation_id": call_id},
            ) from None
        finally:
            elapsed = time.perf_counter() - started
            metrics.count_call(name, surface, outcome, elapsed)
            # The summary row is queued behind the single writer thread (rows keep their order)
            # without holding up the answer; rows that gate an order are awaited by the order
            # tools themselves. drain_audit() flushes the queue at shutdown.
            _queue_call_row(services, spec, call_id, surface, raw_args, outcome, elapsed)
            call_origin.reset(origin_token)
            correlation_id.reset(token)


#: The last settings object's safety snapshot, as audit column text (settings are frozen).
_SNAPSHOT: list[tuple[Settings, JsonText | None]] = []


def safety_snapshot(settings: Settings) -> JsonText | None:
    """``settings.safety_snapshot()`` as audit column text, encoded once per settings object.

    Every order writes it twice (gate decision, tool call); building and encoding it each
    time cost ~0.2 ms of the event loop per order.
    """
    if _SNAPSHOT and _SNAPSHOT[0][0] is settings:
        return _SNAPSHOT[0][1]
    from ibkr_mcp.audit._codec import JsonText  # the audit is open by the first order call

    snapshot = JsonText.of(settings.safety_snapshot())
    _SNAPSHOT[:] = [(settings, snapshot)]
    return snapshot


#: Audit writes queued behind answers, still in flight.
_PENDING: set[asyncio.Future[Any]] = set()


def schedule_audit(write: Coroutine[Any, Any, Any]) -> None:
    """Run an audit write in the background; ``drain_audit()`` waits for every one of them."""
    task = asyncio.get_running_loop().create_task(write)
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


async def drain_audit() -> None:
    """Wait until every queued audit row of a read-only call is written (call at shutdown)."""
    while _PENDING:
        await asyncio.gather(*list(_PENDING), return_exceptions=True)


def _queue_call_row(
    services: Services,
    spec: ToolSpec[Any, Any],
    call_id: str,
    surface: Surface,
    arguments: dict[str, Any],
    outcome: str,
    elapsed: float,
) -> None:
    # Order tools write their own intent rows (and refuse to send when that fails); the summary
    # row queued here must never turn an answered call into an error, so failures are logged.
    try:
        written = services.audit.queue_event(
            correlation_id=call_id,
            kind="tool_call",
            tool=spec.name,
            surface=surface,
            arguments=arguments,
            outcome=outcome,
            duration_ms=round(elapsed * 1000, 3),
            safety=safety_snapshot(services.settings) if not spec.read_only else None,
        )
    except Exception as exc:  # noqa: BLE001 - see above: logged loudly, never raised
        logger.error("audit record for {} failed: {}", spec.name, exc)
        return
    _PENDING.add(written)
    written.add_done_callback(_PENDING.discard)
