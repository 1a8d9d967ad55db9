"""REST routes generated from the tool registry: one route per tool, one call pipeline."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.responses import Response

from ibkr_mcp import __version__
from ibkr_mcp.errors import HTTP_STATUS, HTTP_TRANSPORT_STATUS, InvalidInputError
from ibkr_mcp.http_api.examples import EXAMPLES
from ibkr_mcp.http_api.fastpath import JsonBodies, ToolRoute, json_response
from ibkr_mcp.http_api.responses import ErrorBody
from ibkr_mcp.tools.registry import Registry, ToolSpec

_PATH_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/{model}"
#: What each error status means on a generated route (the body is always ``ErrorBody``).
_STATUS_TEXT = {
    401: "Missing or wrong API token",
    403: "Refused by a safety gate (details name the gate), account not managed, or Host",
    404: "Unknown contract or order",
    409: "Ambiguous contract (details list the candidates) or idempotency conflict",
    413: "Request body too large",
    422: "Invalid input (details.errors name each field) or order rejected by IB",
    429: "IB pacing violation",
    502: "IB answered with an error (market data, gateway)",
    503: "IB Gateway / TWS not connected, hung, overloaded, or audit unavailable",
    504: "IB did not answer in time",
}


def _error_statuses() -> dict[str, str]:
    """Every status an error code maps to (errors.py), documented; 500 never is (a bug)."""
    statuses = set(HTTP_STATUS.values()) | set(HTTP_TRANSPORT_STATUS.values())
    statuses -= {500, 405, 400}  # 405/400: routing, not this operation; 500: never by design
    return {
        str(status): _STATUS_TEXT.get(status, "Error (see the body's code)")
        for status in sorted(statuses)
    }


#: The error statuses documented on every generated route.
_ERROR_STATUSES = _error_statuses()

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]

#: The bearer token as an OpenAPI security scheme (``/docs`` gets its Authorize button). The
#: request guard checks the token; this dependency only documents it (never refuses itself).
BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="API_TOKEN, sent as 'Authorization: Bearer <API_TOKEN>'. Needed on every path "
    "but /health and the docs when the server has API_TOKEN set.",
    auto_error=False,
)
#: A route's OpenAPI security requirement. Declared, not a FastAPI dependency: the token is
#: checked once by the request guard middleware, and a dependency would be solved again on
#: every request for nothing (it only documented the scheme).
SECURED: dict[str, Any] = {"security": [{"bearerAuth": []}]}


def path_params(spec: ToolSpec[Any, Any]) -> list[str]:
    """The ``{name}`` parameters of the spec's HTTP path, in order."""
    return _PATH_PARAM.findall(spec.http_path)


def _is_list_field(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    if typing.get_origin(annotation) in (list, tuple, set, frozenset):
        return True
    return any(
        typing.get_origin(arg) in (list, tuple, set, frozenset)
        for arg in typing.get_args(annotation)
    )


def parse_query(query: str) -> list[tuple[str, str]]:
    """What Starlette's ``QueryParams`` parses, without building its multi-dict every request.

    ``parse_qsl(query, keep_blank_values=True)``; a query with nothing to unquote (no ``%``,
    no ``+``: the usual ``symbol=AAPL``) is split directly, to the same pairs.
    """
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name in model.model_fields if _is_list_field(model, name))


def query_arguments(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """Query parameters as raw tool arguments (repeated keys or list fields become lists)."""
    listy = _list_fields(model)
    values: dict[str, list[str]] = {}
    for key, value in parse_query(request.scope["query_string"].decode("latin-1")):
        values.setdefault(key, []).append(value)
    return {
        key: found if key in listy or len(found) > 1 else found[0] for key, found in values.items()
    }


async def body_arguments(request: Request) -> dict[str, Any]:
    """The JSON object body as raw tool arguments (empty body: no arguments)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw.strip():
        origin = request.headers.get("origin")
        if origin and content_type != "application/json" and not _loopback_origin(origin):
            # An empty cross-site form post (e.g. to /cancel) would pass any body check.
            raise InvalidInputError(
                f"Cross-site request from {origin!r} refused.",
                remedy="Send POSTs with Content-Type: application/json.",
                details={"errors": [{"field": "(body)", "message": "cross-site request"}]},
            )
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        # Browsers cannot send application/json cross-site without a CORS preflight (which
        # this server never grants), so insisting on it keeps web pages from placing orders.
        raise InvalidInputError(
            f"Request body must be application/json, not {content_type or 'unspecified'!r}.",
            remedy="Send the arguments as a JSON object with Content-Type: application/json.",
            details={"errors": [{"field": "(body)", "message": "wrong content type"}]},
        )
    try:
        data = _loads(raw)
    except ValueError as exc:
        raise InvalidInputError(
            f"Request body is not valid JSON: {exc}",
            remedy="Send the arguments as a JSON object.",
            details={"errors": [{"field": "(body)", "message": "invalid JSON"}]},
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            "Request body must be a JSON object of tool arguments.",
            remedy='Send the arguments as a JSON object, e.g. {"symbol": "AAPL"}.',
            details={"errors": [{"field": "(body)", "message": "not an object"}]},
        )
    return data


def _loads(raw: bytes) -> Any:
    """Parse JSON; numbers orjson cannot hold (e.g. a 400-digit integer) via the stdlib.

    Such a body is valid JSON: it then fails validation naming its field, and is audited like
    any call, instead of being refused as "not JSON".
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "number" not in text and "64-bit" not in text:
            raise
        import json

        return json.loads(raw)


def _loopback_origin(origin: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(origin).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def make_endpoint(spec: ToolSpec[Any, Any], registry: Registry) -> Endpoint:
    """The endpoint for ``spec``: raw arguments → ``Registry.call`` (which validates) → JSON."""
    in_path = path_params(spec)
    bodies = JsonBodies()

    async def endpoint(request: Request) -> Response:
        if spec.http_method == "GET":
            args = query_arguments(request, spec.input_model)
        else:
            args = await body_arguments(request)
        if in_path:
            # The path names the object; it wins over a conflicting body field.
            args.update({name: request.path_params[name] for name in in_path})
        result = await registry.call(
            spec.name,
            args,
            services=request.app.state.services,
            surface="http",
            cid=request.scope.get("state", {}).get("correlation_id"),
        )
        return json_response(bodies.body(result.output))

    endpoint.__name__ = spec.name
    endpoint.__doc__ = spec.description
    return endpoint


def _openapi_extra(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    """Parameters / request body documented from the input model (the endpoint reads raw)."""
    schema = spec.input_model.model_json_schema(ref_template=_REF)
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    in_path = path_params(spec)
    example = EXAMPLES.get(spec.name, {})
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": props.get(name, {})}
        for name in in_path
    ]
    for path_param in params:
        if path_param["name"] in example:
            path_param["example"] = example[path_param["name"]]
    extra: dict[str, Any] = {}
    if spec.http_method == "GET":
        for name, prop in props.items():
            if name in in_path:
                continue
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if "description" in prop:
                param["description"] = prop["description"]
            if name in example:
                param["example"] = example[name]
            if _is_list_field(spec.input_model, name):
                param["explode"] = True
            params.append(param)
    elif set(props) - set(in_path):
        extra["requestBody"] = {
            "required": bool(required - set(in_path)),
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model=spec.input_model.__name__)},
                    **({"example": example} if example else {}),
                }
            },
        }
    if params:
        extra["parameters"] = params
    return extra


def add_tool_routes(app: FastAPI, registry: Registry) -> None:
    """Register one route per tool, documented with the tool's input and output models."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": text}
        for status, text in _ERROR_STATUSES.items()
    }
    for spec in registry:
        tag = spec.http_path.split("/")[2] if spec.http_path.count("/") >= 2 else "api"
        app.router.add_api_route(
            spec.http_path,
            make_endpoint(spec, registry),
            methods=[spec.http_method],
            name=spec.name,
            operation_id=spec.name,
            summary=spec.title or spec.name,
            description=spec.description,
            response_model=spec.output_model,
            responses=responses,
            tags=[tag],
            openapi_extra={**_openapi_extra(spec), **SECURED},
            route_class_override=ToolRoute,
        )


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    methods = ("get", "put", "post", "delete", "patch")
    paths = schema.get("paths", {}).values()
    return [op for item in paths for method, op in item.items() if method in methods]


def install_openapi(app: FastAPI, registry: Registry, *, token_required: bool) -> None:
    """Make ``/openapi.json`` include the input models the generated routes reference.

    Args:
        app: The app.
        registry: The tool registry.
        token_required: Whether the server has ``API_TOKEN`` set (the security requirement is
            then mandatory; otherwise optional).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title="mm-ibkr-gateway",
            version=__version__,
            description="Interactive Brokers through one safety gate chain (REST surface).",
            routes=app.routes,
        )
        inputs = {spec.input_model for spec in registry}
        _, defs = models_json_schema(
            [(model, "validation") for model in sorted(inputs, key=lambda m: m.__name__)],
            ref_template=_REF,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        schemes = schema["components"].setdefault("securitySchemes", {})
        schemes["bearerAuth"] = BEARER.model.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        if not token_required:
            # Without API_TOKEN the token is not needed (loopback only): say so, keep the scheme.
            for operation in _operations(schema):
                if "security" in operation:
                    operation["security"] = [{}, *operation["security"]]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
