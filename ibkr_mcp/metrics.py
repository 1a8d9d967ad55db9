"""Prometheus metrics, in a registry of our own (``GET /metrics`` serves it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

TOOL_CALLS = Counter(
    "ibkr_tool_calls",
    "Tool calls by tool, surface and outcome code.",
    ["tool", "surface", "outcome"],
    registry=REGISTRY,
)
TOOL_LATENCY = Histogram(
    "ibkr_tool_latency_seconds",
    "Tool call latency by tool.",
    ["tool"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
GATE_REFUSALS = Counter(
    "ibkr_gate_refusals", "Safety gate refusals by gate.", ["gate"], registry=REGISTRY
)
ORDERS = Counter("ibkr_orders", "Orders by resulting status.", ["status"], registry=REGISTRY)
GATEWAY_CONNECTED = Gauge(
    "ibkr_gateway_connected", "1 while the broker connection is up.", registry=REGISTRY
)

# --- connection supervisor ------------------------------------------------------------------
GATEWAY_STATE = Gauge(
    "ibkr_gateway_state",
    "1 for the connection's current state (connected, hung, reconnecting, upstream-lost, "
    "farm-down, halted), 0 for the others.",
    ["state"],
    registry=REGISTRY,
)
GATEWAY_LAST_NOTICE_CODE = Gauge(
    "ibkr_gateway_last_notice_code",
    "Code of the last IB session notice (0: none).",
    registry=REGISTRY,
)
GATEWAY_LAST_NOTICE_AGE = Gauge(
    "ibkr_gateway_last_notice_age_seconds",
    "Seconds since the last IB session notice (-1: none).",
    registry=REGISTRY,
)
GATEWAY_RECONNECTS = Gauge(
    "ibkr_gateway_reconnects", "Reconnects since the process started.", registry=REGISTRY
)
QUEUE_DEPTH = Gauge(
    "ibkr_queue_depth",
    "Requests waiting / open per queue (market_data_waiting, historical_open, ...).",
    ["queue"],
    registry=REGISTRY,
)

#: Each labelled child, looked up once: ``labels()`` checks and locks on every call, and every
#: tool call counts itself (a cached HTTP quote is a few hundred microseconds in all).
_CALL_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def count_call(tool: str, surface: str, outcome: str, seconds: float) -> None:
    """Count one tool call (``TOOL_CALLS``) and observe its latency (``TOOL_LATENCY``)."""
    key = (tool, surface, outcome)
    children = _CALL_CHILDREN.get(key)
    if children is None:
        children = (TOOL_CALLS.labels(tool, surface, outcome), TOOL_LATENCY.labels(tool))
        _CALL_CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


_STATES = ("connected", "hung", "reconnecting", "upstream-lost", "farm-down", "halted")


def observe_gateway(status: Any, state: str) -> None:
    """Copy the gateway's state, last notice and queue depths into the gauges."""
    for name in _STATES:
        GATEWAY_STATE.labels(name).set(1 if name == state else 0)
    GATEWAY_CONNECTED.set(1 if status.connected else 0)
    notice = status.last_notice
    if notice is None:
        GATEWAY_LAST_NOTICE_CODE.set(0)
        GATEWAY_LAST_NOTICE_AGE.set(-1)
    else:
        GATEWAY_LAST_NOTICE_CODE.set(notice.code)
        GATEWAY_LAST_NOTICE_AGE.set((datetime.now(UTC) - notice.at).total_seconds())
    GATEWAY_RECONNECTS.set(status.reconnects)
    for queue, depth in status.queues.items():
        QUEUE_DEPTH.labels(queue).set(depth)
