"""The generated routes' lean request path: no per-request FastAPI machinery, bodies memoised."""

from __future__ import annotations

import typing
import weakref
from collections.abc import Callable, Coroutine
from functools import cache, partial
from typing import Any, cast

import orjson
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_MUTABLE = (list, dict, set, frozenset, bytearray)

#: A generated tool endpoint: the bare request in, its finished response out.
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class ToolRoute(APIRoute):
    """An ``APIRoute`` (documented like any other) whose request handler is the endpoint itself.

    FastAPI's own handler solves the declared dependencies, reads and parses the body and
    validates the returned value against ``response_model`` on every request. A generated tool
    endpoint declares none of that: it takes the bare ``Request``, hands the raw arguments to
    ``Registry.call`` (which validates them) and returns its finished ``Response``. Profiling
    cached quotes showed that machinery at about a fifth of the CPU of a request that did
    nothing. ``response_model`` stays on the route, for OpenAPI only.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        """Build the route as FastAPI does, then serve it with :func:`serve_endpoint`."""
        super().__init__(path, endpoint, **kwargs)
        self.app = serve_endpoint(cast(Endpoint, endpoint))

    def get_route_handler(self) -> Endpoint:
        """The endpoint itself (FastAPI's handler, built here by default, is never used)."""
        return cast(Endpoint, self.endpoint)


def serve_endpoint(endpoint: Endpoint) -> ASGIApp:
    """The ASGI app of a ``Request -> Response`` endpoint.

    Unlike FastAPI's ``request_response`` it opens no exit stacks (they close dependencies
    and uploaded files; a tool endpoint has neither) and does not catch exceptions itself:
    they reach the app's ``ExceptionMiddleware``, whose handlers are the same ones.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


def _immutable_annotation(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return deeply_frozen(annotation)
    if annotation is Any or (isinstance(annotation, type) and issubclass(annotation, _MUTABLE)):
        return False
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and issubclass(origin, _MUTABLE):
        return False
    return all(_immutable_annotation(arg) for arg in typing.get_args(annotation))


@cache
def deeply_frozen(model: type[BaseModel]) -> bool:
    """Whether an instance of ``model`` can never change: frozen, and so is everything it holds.

    Lists and dicts inside a frozen model can still be mutated in place, and ``Any`` may hold
    anything: a model with such a field is not deeply frozen.
    """
    if not model.model_config.get("frozen"):
        return False
    return all(_immutable_annotation(field.annotation) for field in model.model_fields.values())


class JsonBodies:
    """Each output object's JSON body, rendered once while the object lives.

    A cached quote is one frozen ``Quote`` object answered again and again until it expires;
    rendering it (Decimals to exact JSON numbers, datetimes to text) was the largest single
    cost of such a request. The body is kept only for deeply frozen objects (it can then never
    disagree with the object) and only while the object is alive (weak reference): once the
    gateway's cache drops a quote, its body goes with it. Fresh objects render every time.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._bodies: dict[int, tuple[weakref.ref[BaseModel], bytes]] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def body(self, output: BaseModel) -> bytes:
        """The JSON body of ``output``: ``model_dump(mode="json")`` rendered by orjson."""
        key = id(output)
        hit = self._bodies.get(key)
        if hit is not None and hit[0]() is output:
            return hit[1]
        body = orjson.dumps(output.model_dump(mode="json"), default=str)
        if deeply_frozen(type(output)):
            self._bodies[key] = (weakref.ref(output, partial(self._forget, key)), body)
        return body

    def _forget(self, key: int, ref: weakref.ref[BaseModel]) -> None:
        # Only this object's entry: its id may already name a newer object's body.
        hit = self._bodies.get(key)
        if hit is not None and hit[0] is ref:
            del self._bodies[key]


def json_response(body: bytes) -> Response:
    """An ``application/json`` response of an already rendered body."""
    return Response(body, media_type="application/json")
