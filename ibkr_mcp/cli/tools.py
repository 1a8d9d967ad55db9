"""CLI commands generated from the tool registry: one command per tool, one call pipeline."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ibkr_mcp.cli.common import (
    configure_cli_logging,
    confirm,
    err,
    exit_codes_help,
    out,
    run_async,
    settings_or_exit,
    with_runtime,
    write_json,
)
from ibkr_mcp.cli.json_args import json_callback, json_help, json_kind
from ibkr_mcp.tools.registry import Registry, ToolSpec

#: Tools whose ``symbol`` argument accepts several symbols (one call each, with a progress bar).
MULTI_SYMBOL = frozenset({"get_bars"})
_RESERVED = frozenset({"sim", "as_json", "yes"})
#: Confirmation tokens live in the process that previewed; a one-shot CLI process therefore
#: previews and places in the same run (``place`` without ``--confirmation-token``).
PLACE = "place_order"
#: Two-step tools (preview, then the same call with token and key): given an idempotency key
#: and no token, the CLI previews, asks, and sends in the same run, as ``place`` does (a token
#: from another run is unknown to this process).
TWO_STEP = frozenset({"modify_order", "close_position"})
CONFIRMS = TWO_STEP | {PLACE}
#: Cancels only this client's orders; the CLI names other clients' orders it left working.
CANCEL_ALL = "cancel_all_orders"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None`` in a union, and whether it was optional."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else str), len(rest) < len(args)
    return annotation, False


def _help(field: FieldInfo, base: Any) -> str:
    text = field.description or ""
    if typing.get_origin(base) is Literal:
        choices = "|".join(str(a) for a in typing.get_args(base))
        text = f"{text} One of: {choices}.".strip()
    if not field.is_required() and field.default is not None:
        text = f"{text} (default: {field.default})".strip()
    return text


def _parameter(name: str, field: FieldInfo, positional: bool, multi: bool) -> inspect.Parameter:
    """A Typer parameter for one input field; values stay strings until the registry validates."""
    base, _ = _unwrap(field.annotation)
    help_text = _help(field, base)
    is_list = typing.get_origin(base) in (list, tuple) or multi
    if base is bool:
        flag = name.replace("_", "-")
        annotation: Any = Annotated[
            bool | None, typer.Option(f"--{flag}/--no-{flag}", help=help_text, show_default=False)
        ]
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None
        )
    if positional:
        kind: Any = list[str] if is_list else str
        if not field.is_required():
            kind = kind | None
        info = typer.Argument(help=help_text, show_default=False)
        if (json_arg := json_kind(base)) is not None:  # none today; decoded like the options
            kind = list[str] if json_arg == "list" else str
            kind = kind if field.is_required() else kind | None
            info = typer.Argument(
                help=f"{help_text} {json_help(json_arg, name.upper())}".strip(),
                show_default=False,
                metavar="JSON",
                callback=json_callback(json_arg, name.upper()),
            )
        default = inspect.Parameter.empty if field.is_required() else None
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, info], default=default
        )
    kind = list[str] | None if is_list else str | None
    flag = f"--{name.replace('_', '-')}"
    if (kind_of_json := json_kind(base)) is not None:
        # Objects and lists of objects are JSON text: decoded (or refused, naming the option)
        # while parsing, so the registry validates them like MCP and HTTP input.
        option = typer.Option(
            flag,
            help=f"{help_text} {json_help(kind_of_json, flag)}".strip(),
            show_default=False,
            metavar="JSON",
            callback=json_callback(kind_of_json, flag),
        )
        kind = list[str] | None if kind_of_json == "list" else str | None
    else:
        option = typer.Option(flag, help=help_text, show_default=False)
    if field.is_required():
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, option]
        )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, option], default=None
    )


def _signature(spec: ToolSpec[Any, Any]) -> inspect.Signature:
    fields = spec.input_model.model_fields
    params: list[inspect.Parameter] = []
    for name in spec.cli_arguments:
        multi = name == "symbol" and spec.name in MULTI_SYMBOL
        params.append(_parameter(name, fields[name], True, multi))
    for name, field in fields.items():
        if name in spec.cli_arguments or name in _RESERVED:
            continue
        if spec.name in CONFIRMS and name == "confirmation_token":
            option = typer.Option(
                "--confirmation-token",
                help="Token from the preview; omit it to preview and confirm in this run"
                + (" (with --idempotency-key)." if spec.name in TWO_STEP else "."),
                show_default=False,
            )
            params.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Annotated[str | None, option],
                    default=None,
                )
            )
            continue
        params.append(_parameter(name, field, False, False))
    if spec.name in CONFIRMS:
        params.append(
            inspect.Parameter(
                "yes",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    bool, typer.Option("--yes", "-y", help="Send without asking to confirm.")
                ],
                default=False,
            )
        )
    params.append(
        inspect.Parameter(
            "as_json",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[bool, typer.Option("--json", help="Output the result as JSON.")],
            default=False,
        )
    )
    params.append(
        inspect.Parameter(
            "sim",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                bool, typer.Option("--sim", help="Use the embedded IB Gateway simulator.")
            ],
            default=False,
        )
    )
    return inspect.Signature(params)


def _arguments(values: dict[str, Any]) -> dict[str, Any]:
    """Raw tool arguments: options left unset are omitted (the input model's default applies)."""
    return {k: v for k, v in values.items() if v is not None and k not in _RESERVED}


def make_command(spec: ToolSpec[Any, Any], registry: Registry) -> Callable[..., None]:
    """The Typer command function for ``spec``."""

    def command(**values: Any) -> None:
        sim = bool(values.get("sim"))
        as_json = bool(values.get("as_json"))
        settings = settings_or_exit(as_json=as_json)
        configure_cli_logging(settings)
        args = _arguments(values)
        batches = [args]
        if spec.name in MULTI_SYMBOL and isinstance(args.get("symbol"), list):
            batches = [{**args, "symbol": symbol} for symbol in args["symbol"]]
        yes = bool(values.get("yes"))
        outputs = run_async(
            lambda: _call_all(spec, registry, settings, sim, batches, as_json, yes=yes),
            as_json=as_json,
        )
        if as_json:
            data = [o.model_dump(mode="json") for o in outputs]
            write_json(data if len(batches) > 1 else data[0])
            return
        from ibkr_mcp.cli.render import render_model

        for output in outputs:
            render_model(out, spec.title or spec.name, output)

    command.__name__ = spec.name
    command.__doc__ = spec.description
    command.__signature__ = _signature(spec)  # type: ignore[attr-defined]
    return command


async def _call_all(
    spec: ToolSpec[Any, Any],
    registry: Registry,
    settings: Any,
    sim: bool,
    batches: list[dict[str, Any]],
    as_json: bool,
    *,
    yes: bool = False,
) -> list[BaseModel]:
    async def body(services: Any) -> list[BaseModel]:
        if spec.name == PLACE and "confirmation_token" not in batches[0]:
            placed = await _preview_then_send(registry, services, PLACE, batches[0], as_json, yes)
            return [await _await_approval(registry, services, batches[0], placed)]
        first = batches[0]
        if (
            spec.name in TWO_STEP
            and "idempotency_key" in first
            and "confirmation_token" not in first
        ):
            return [await _preview_then_send(registry, services, spec.name, first, as_json, yes)]
        if len(batches) == 1:
            result = await registry.call(spec.name, batches[0], services=services, surface="cli")
            if spec.name == PLACE:
                return [await _await_approval(registry, services, batches[0], result.output)]
            if spec.name == CANCEL_ALL:
                from ibkr_mcp.cli.cancel_all import note_untouched

                return [await note_untouched(services, batches[0], result.output)]
            return [result.output]
        from rich.progress import Progress

        outputs: list[BaseModel] = []
        with Progress(console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task(spec.cli_name, total=len(batches))
            for batch in batches:
                progress.update(task, description=f"{spec.cli_name} {batch.get('symbol', '')}")
                result = await registry.call(spec.name, batch, services=services, surface="cli")
                outputs.append(result.output)
                progress.advance(task)
        return outputs

    return await with_runtime(settings, sim=sim, body=body)


async def _preview_then_send(
    registry: Registry, services: Any, name: str, args: dict[str, Any], as_json: bool, yes: bool
) -> BaseModel:
    """Preview, show the verdicts, confirm (unless ``--yes``), then send with the token.

    ``place`` previews with ``preview_order``; a two-step tool with itself (no token or key).
    """
    from ibkr_mcp.cli.render import render_model

    _check_whole(registry, name, args)
    preview_tool = "preview_order" if name == PLACE else name
    without_key = {k: v for k, v in args.items() if k != "idempotency_key"}
    first = (
        await registry.call(preview_tool, without_key, services=services, surface="cli")
    ).output
    preview = first if name == PLACE else getattr(first, "preview", None)
    if not as_json and preview is not None:
        render_model(err, preview_tool, preview)
    token = getattr(preview, "confirmation_token", None)
    if token is None:
        # Refused: sending anyway lets the gate chain say why, and records the attempt.
        token = "refused-at-preview"
    else:
        _confirm(yes, as_json, "Place this order?" if name == PLACE else "Send this order?")
    result = await registry.call(
        name, {**args, "confirmation_token": token}, services=services, surface="cli"
    )
    sent: BaseModel = result.output
    return sent


def _check_whole(registry: Registry, name: str, args: dict[str, Any]) -> None:
    """Check the whole call (idempotency key included) before previewing anything."""
    from pydantic import ValidationError

    from ibkr_mcp.tools.registry import validation_error

    try:
        registry.get(name).input_model.model_validate(
            {**args, "confirmation_token": "placeholder-token"}
        )
    except ValidationError as exc:
        raise validation_error(name, exc) from None


def _confirm(yes: bool, as_json: bool, question: str) -> None:
    """Ask ``question`` (unless ``--yes``); anything but yes raises ``ConfirmationError``."""
    confirm(
        yes,
        as_json,
        question,
        declined="nothing was sent.",
        remedy="Answer 'y' at the prompt, or pass --yes to confirm up front.",
    )


async def _await_approval(
    registry: Registry, services: Any, args: dict[str, Any], placed: BaseModel
) -> BaseModel:
    """A CLI-queued order is sent by this process: keep it running until a human decides.

    Ctrl-C stops waiting; the approval then expires unsent (nobody else may send it).
    """
    import asyncio

    from ibkr_mcp.safety.approvals import get_approval

    approval_id = getattr(placed, "approval_id", None)
    if getattr(placed, "status", None) != "PENDING_APPROVAL" or approval_id is None:
        return placed
    err.print(
        f"Queued for approval as {approval_id}. In another terminal a human runs "
        f"`ibkr-mcp approvals approve {approval_id}` (or deny); this command sends it then. "
        "Ctrl-C stops waiting (the approval then expires unsent).",
        soft_wrap=True,
    )
    while True:
        approval = await get_approval(services.audit, approval_id, services.now())
        if approval.state not in ("pending", "approved"):
            break
        await asyncio.sleep(0.25)
    # The same key replays the outcome (sent, denied, expired, refused); nothing is re-sent.
    result = await registry.call(
        PLACE,
        {**args, "confirmation_token": args.get("confirmation_token") or "replay-after-approval"},
        services=services,
        surface="cli",
    )
    output: BaseModel = result.output
    return output


def _toolsets() -> frozenset[str]:
    """The enabled toolsets from the environment (invalid settings: the default two).

    A command then stops on the settings error itself, with its one-line message.
    """
    from ibkr_mcp.config import SettingsError, load_settings

    try:
        return load_settings().enabled_toolsets
    except SettingsError:
        return frozenset({"read", "trade"})


def register_tool_commands(app: typer.Typer, registry: Registry | None = None) -> Registry:
    """Add one command per registry tool to ``app`` (``cli_name``, arguments from the model)."""
    from ibkr_mcp.tools import build_registry

    registry = (registry or build_registry()).enabled(_toolsets(), "cli")
    for spec in registry:
        app.command(
            spec.cli_name,
            help=spec.description,
            epilog=exit_codes_help(),
            rich_help_panel="Tools (same as MCP and REST)",
        )(make_command(spec, registry))
    return registry
