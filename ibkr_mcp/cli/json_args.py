"""Tool fields a shell cannot spell as plain text (objects, lists of objects) as JSON options.

``--contracts '[{"symbol": "AAPL", …}]'`` (the README's form) and one object per repeated
``--contracts '{…}'`` both become the list the tool's input model validates; text that is not
JSON is a usage error naming the option (exit 2) before any connection is opened.
"""

from __future__ import annotations

import json
import types
import typing
from decimal import Decimal
from typing import Any

import click
import typer
from pydantic import BaseModel


def _is_object(annotation: Any) -> bool:
    """Whether ``annotation`` is a model or a dict (something only JSON can spell)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_object(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_object(a) for a in typing.get_args(annotation))
    if annotation is dict or typing.get_origin(annotation) is dict:
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def json_kind(base: Any) -> str | None:
    """``"list"`` for a list of objects, ``"object"`` for one object, else ``None`` (plain text).

    Args:
        base: The field's annotation without ``None`` (``tools._unwrap``).
    """
    if typing.get_origin(base) in (list, tuple):
        return "list" if any(_is_object(a) for a in typing.get_args(base)) else None
    return "object" if _is_object(base) else None


def json_help(kind: str, option: str) -> str:
    """The sentence ``--help`` adds to a JSON option, saying both accepted forms."""
    if kind == "list":
        return (
            f"JSON: an array of objects, or one object per {option} (repeatable), e.g. "
            f"{option} '[{{...}}, {{...}}]'."
        )
    return f"JSON: one object, e.g. {option} '{{...}}'."


def _decode(text: str, option: str) -> Any:
    try:
        # Decimal keeps a price such as 220.15 exact (a float would not).
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"not valid JSON ({exc.msg} at column {exc.colno}): {_clip(text)!r}.",
            param_hint=f"'{option}'",
        ) from None


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def json_callback(kind: str, option: str) -> typing.Callable[..., Any]:
    """A Click callback that turns the option's text into JSON values (or a usage error).

    Args:
        kind: ``"list"`` (values repeat; each an array to extend with or one object) or
            ``"object"`` (one object).
        option: The option's spelling, for the error message.
    """

    def decode(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        if kind == "object":
            decoded = _decode(value, option)
            if not isinstance(decoded, dict):
                raise typer.BadParameter(
                    f"expected a JSON object, got {_json_type(decoded)}.", param_hint=f"'{option}'"
                )
            return decoded
        items: list[Any] = []
        for text in value:
            decoded = _decode(text, option)
            if isinstance(decoded, list):
                items.extend(decoded)
            elif isinstance(decoded, dict):
                items.append(decoded)
            else:
                raise typer.BadParameter(
                    f"expected a JSON array of objects or one object, got {_json_type(decoded)}.",
                    param_hint=f"'{option}'",
                )
        # An empty list stays empty: the input model says whether that is allowed.
        return items

    return decode


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else type(value).__name__
