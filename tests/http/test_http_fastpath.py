"""The generated routes' lean path: memoised JSON bodies, still one audit row per call."""

from __future__ import annotations

import gc
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi.routing import APIRoute
from http_helpers import http_client
from pydantic import BaseModel, ConfigDict

from ibkr_mcp.config import Settings
from ibkr_mcp.http_api import create_app
from ibkr_mcp.http_api.fastpath import JsonBodies, ToolRoute, deeply_frozen
from ibkr_mcp.http_api.routes import parse_query
from ibkr_mcp.logs import new_correlation_id
from ibkr_mcp.models import Greeks, Quote
from ibkr_mcp.tools.market_data import QuotesResult
from ibkr_mcp.tools.registry import drain_audit


def _quote(bid: str = "205.49") -> Quote:
    return Quote(
        symbol="AAPL",
        con_id=265598,
        currency="USD",
        bid=Decimal(bid),
        ask=Decimal("205.5"),
        last=None,
        volume=Decimal("1200"),
        market_data_type="live",
        timestamp=datetime(2026, 1, 2, 15, 30, tzinfo=UTC),
        source="simulator",
        greeks=Greeks(implied_vol=None, delta=Decimal("0.5"), gamma=None, vega=None, theta=None),
    )


class _Loose(BaseModel):
    value: int


class _FrozenWithList(BaseModel):
    model_config = ConfigDict(frozen=True)

    values: list[int]


class _FrozenWithAny(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: Any


def test_deeply_frozen_only_for_models_nothing_can_change() -> None:
    assert deeply_frozen(Quote) and deeply_frozen(Greeks)
    assert not deeply_frozen(QuotesResult)  # frozen, but holds lists
    assert not deeply_frozen(_Loose)
    assert not deeply_frozen(_FrozenWithList)
    assert not deeply_frozen(_FrozenWithAny)


def test_body_is_rendered_once_per_frozen_object_and_dropped_with_it() -> None:
    bodies = JsonBodies()
    quote = _quote()
    first = bodies.body(quote)
    assert orjson.loads(first) == quote.model_dump(mode="json")
    assert orjson.loads(first)["bid"] == 205.49 and orjson.loads(first)["volume"] == 1200
    assert bodies.body(quote) is first  # the same bytes: not rendered again
    other = _quote("205.48")
    assert orjson.loads(bodies.body(other))["bid"] == 205.48  # an equal-shaped other object
    assert len(bodies) == 2
    del quote, other
    gc.collect()
    assert len(bodies) == 0


def test_body_of_a_mutable_output_is_never_kept() -> None:
    bodies = JsonBodies()
    loose = _Loose(value=1)
    assert orjson.loads(bodies.body(loose)) == {"value": 1}
    loose.value = 2
    assert orjson.loads(bodies.body(loose)) == {"value": 2}
    assert len(bodies) == 0


def test_every_tool_route_is_lean(settings: Settings) -> None:
    app = create_app(settings)
    tools = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/api/")]
    lean = [r for r in tools if isinstance(r, ToolRoute)]
    assert lean and all(r.response_model is not None for r in lean)  # still documented


async def test_cached_quotes_answer_the_same_body_and_each_call_is_audited(
    settings_for: Any, sim: Any
) -> None:
    from ibkr_mcp.runtime import open_runtime

    settings: Settings = settings_for(sim.port, QUOTE_CACHE_SECONDS=30)
    async with (
        open_runtime(settings, wait_connected=5.0) as services,
        http_client(settings, services) as client,
    ):
        answers = [await client.get("/api/market/quote?symbol=MSFT") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert answers[0].content == answers[1].content == answers[2].content
        assert answers[0].headers["content-type"] == "application/json"
        assert isinstance(answers[0].json()["bid"], float)
        cids = [a.headers["x-correlation-id"] for a in answers]
        assert len(set(cids)) == 3
        await drain_audit()
        rows = await services.audit.query(
            "SELECT correlation_id, outcome FROM events WHERE kind = 'tool_call' "
            "AND tool = 'get_quote' AND surface = 'http'"
        )
    assert {row["correlation_id"] for row in rows} >= set(cids)
    assert all(row["outcome"] == "ok" for row in rows)


async def test_errors_on_the_lean_path_are_still_mapped(client: Any) -> None:
    missing = await client.get("/api/market/quote")
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "INVALID_INPUT"
    assert (
        missing.json()["error"]["details"]["correlation_id"] == missing.headers["x-correlation-id"]
    )


def test_query_parsing_agrees_with_parse_qsl() -> None:
    cases = ["", "a", "a=", "=x", "a=1&&b=2", "a=b=c", "&", "a&b", "symbol=AAPL", "a=1&a=2"]
    cases += ["x=%41+b", "s=a+b", "é=ü", ";a=1", "a=1;b=2", "&&=&", "symbols=AAPL,MSFT"]
    for query in cases:
        assert parse_query(query) == parse_qsl(query, keep_blank_values=True), query


def test_correlation_ids_are_uuid4_hex_unique_and_fresh_after_fork() -> None:
    ids = [new_correlation_id() for _ in range(600)]  # more than one pool of random bytes
    assert len(set(ids)) == len(ids)
    for cid in ids:
        value = uuid.UUID(hex=cid)
        assert value.hex == cid and value.version == 4 and value.variant == uuid.RFC_4122
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child's first id must not repeat what its parent hands out next
        os.write(write, new_correlation_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() != new_correlation_id()
    os.close(read)
    os.close(write)
