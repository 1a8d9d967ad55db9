"""Prometheus metrics, in a registry of our own (``GET /metrics`` serves it)."""

from __future__ import annotations

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
