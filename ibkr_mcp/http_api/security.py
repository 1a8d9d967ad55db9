"""Request guard (pure ASGI): bearer token, Host check, body size limit, correlation ids."""

from __future__ import annotations

import hmac
import ipaddress
import re
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ibkr_mcp.config import Settings
from ibkr_mcp.http_api.responses import error_payload
from ibkr_mcp.logs import correlation_id, new_correlation_id

#: A client-supplied ``X-Correlation-ID`` is honoured only in this shape (no log injection).
CORRELATION_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
CORRELATION_HEADER = "x-correlation-id"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class BindRefusedError(Exception):
    """Binding the HTTP API to a non-loopback address without ``API_TOKEN`` is refused."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts local connections."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A host name other than localhost may resolve anywhere: treat it as exposed.
        return False


def check_bind(host: str, settings: Settings) -> None:
    """Refuse an exposed bind without a token.

    Raises:
        BindRefusedError: If ``host`` is not loopback and ``API_TOKEN`` is unset.
    """
    if is_loopback(host):
        return
    if settings.API_TOKEN is None:
        raise BindRefusedError(
            f"Refusing to bind the HTTP API to {host}: it is not a loopback address and "
            "API_TOKEN is not set, so anyone on the network could trade. Set API_TOKEN "
            "(clients then send 'Authorization: Bearer <token>') or bind to 127.0.0.1."
        )
    if len(settings.API_TOKEN.get_secret_value()) < MIN_EXPOSED_TOKEN_LENGTH:
        raise BindRefusedError(
            f"Refusing to bind the HTTP API to {host}: API_TOKEN is shorter than "
            f"{MIN_EXPOSED_TOKEN_LENGTH} characters, too easy to guess on a network. Generate "
            "one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


#: A token guarding a network-exposed API must be at least this long.
MIN_EXPOSED_TOKEN_LENGTH = 32
#: Paths served without the token (no account data, no broker access).
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
#: The docs' own assets (Swagger UI, ReDoc), served from the app so the docs work offline.
DOCS_ASSETS = "/static-offline-docs/"


def _protected(path: str) -> bool:
    # Everything but the liveness probe and the docs: /ready and /metrics reveal accounts and
    # the gateway's address, /api and /mcp trade.
    return path not in OPEN_PATHS and not path.startswith(DOCS_ASSETS)


#: A Host header as RFC 9110 allows it: a name or IPv4 address, or a bracketed IPv6 address,
#: then an optional port. Anything else (userinfo, paths, spaces) is refused outright.
_HOST_RE = re.compile(r"^(?P<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$", re.ASCII)


@lru_cache(maxsize=256)
def host_name(host: str) -> str | None:
    """The host name of a ``Host`` header value (``[::1]`` kept bracketed), or ``None``.

    ``None`` for a missing or malformed header (e.g. ``127.0.0.1:1@evil.com``): a request the
    loopback check cannot vouch for. Cached: a server sees a handful of distinct values.
    """
    match = _HOST_RE.fullmatch(host.strip().lower())
    return match.group("name") if match else None


class RequestGuard:
    """Outermost ASGI middleware; the order of checks is host, token, size, then the app.

    * Every path but ``/health`` and the docs needs ``Authorization: Bearer <API_TOKEN>`` when
      a token is set.
    * Without a token (loopback only), the ``Host`` header must name a loopback host on every
      path: this stops DNS-rebinding pages from driving a local server through the browser.
    * Bodies over ``API_MAX_BODY_BYTES`` get 413, by ``Content-Length`` or while streaming.
    * Every ``/api`` response carries ``X-Correlation-ID`` (the client's, if well formed).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        """Wrap ``app`` with the checks configured by ``settings``."""
        self.app = app
        token = settings.API_TOKEN
        self._token = None if token is None else token.get_secret_value().encode()
        self._max_body = settings.API_MAX_BODY_BYTES
        self._allowed_hosts = _LOOPBACK_NAMES | {settings.API_HOST.lower()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on (lifespan and websockets pass untouched)."""
        # Logs written while serving the request carry its correlation id, uvicorn's access
        # line included (written inside ``send``, in this task); reset for in-process callers.
        token = correlation_id.set("-")
        try:
            await self._check_and_forward(scope, receive, send)
        finally:
            correlation_id.reset(token)

    async def _check_and_forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = _headers(scope)
        cid: str | None = None
        if path == "/api" or path.startswith("/api/"):
            supplied = headers.get(CORRELATION_HEADER, "")
            cid = supplied if CORRELATION_ID_RE.fullmatch(supplied) else new_correlation_id()
            scope.setdefault("state", {})["correlation_id"] = cid
            correlation_id.set(cid)
        extra = [(CORRELATION_HEADER.encode(), cid.encode())] if cid else []

        if path == "/mcp" or path.startswith("/mcp/"):
            origin = headers.get("origin")
            if origin is not None and not self._allowed_origin(origin):
                # The MCP spec: servers MUST validate Origin (a web page must not drive /mcp).
                await _send_error(
                    send,
                    403,
                    "FORBIDDEN_ORIGIN",
                    f"Origin {origin!r} is not allowed to use /mcp.",
                    "Call /mcp from an MCP client (no Origin) or from a page on this host.",
                    extra,
                )
                return
        if _protected(path):
            refusal = self._refusal(headers)
            if refusal is not None:
                status, code, message, remedy = refusal
                more = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await _send_error(send, status, code, message, remedy, extra + more)
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            await _send_error(send, 413, *self._too_large(), extra)
            return
        await self._forward(scope, receive, send, extra)

    def _refusal(self, headers: dict[str, str]) -> tuple[int, str, str, str] | None:
        if self._token is None:
            host = headers.get("host", "").lower()
            name = host_name(host)
            if name is None or name not in self._allowed_hosts:
                return (
                    403,
                    "FORBIDDEN_HOST",
                    f"Host {host!r} is not allowed without API_TOKEN.",
                    "Call the API as 127.0.0.1/localhost, or set API_TOKEN.",
                )
            return None
        auth = headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token):
            return None
        return (
            401,
            "UNAUTHORIZED",
            "Missing or wrong API token.",
            "Send 'Authorization: Bearer <API_TOKEN>'.",
        )

    def _allowed_origin(self, origin: str) -> bool:
        """Whether a browser ``Origin`` names this server's own host (loopback or API_HOST)."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(origin.strip())
            name = parts.hostname
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not name:
            return False
        name = f"[{name}]" if ":" in name else name
        return name in self._allowed_hosts or name.strip("[]") in self._allowed_hosts

    def _too_large(self) -> tuple[str, str, str]:
        return (
            "PAYLOAD_TOO_LARGE",
            f"Request body is larger than API_MAX_BODY_BYTES ({self._max_body} bytes).",
            "Send a smaller request.",
        )

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, extra: list[tuple[bytes, bytes]]
    ) -> None:
        if scope.get("method") in ("POST", "PUT", "PATCH", "DELETE"):
            # Read the whole (small) body here, so an oversized one - chunked, without
            # Content-Length - gets 413 before any app (FastMCP included) has seen a byte.
            body = await self._read_body(receive)
            if body is None:
                await _send_error(send, 413, *self._too_large(), extra)
                return
            receive = _replay(body, receive)

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, tagged_send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The request body, or ``None`` once it exceeds ``API_MAX_BODY_BYTES``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


#: The only request headers the guard reads (the others are not decoded on its behalf).
_READ_HEADERS = frozenset(
    {b"host", b"authorization", b"content-length", b"origin", CORRELATION_HEADER.encode()}
)


def _headers(scope: Scope) -> dict[str, str]:
    """The headers the guard reads, by lower-case name (a repeated one: its last value)."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name = key.lower()
        if name in _READ_HEADERS:
            out[name.decode("latin-1")] = value.decode("latin-1")
    return out


async def _send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    remedy: str,
    extra: list[tuple[bytes, bytes]],
) -> None:
    body = error_payload(code, message, remedy)
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
