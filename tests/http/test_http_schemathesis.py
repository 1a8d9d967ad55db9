"""A bounded schemathesis run (every built-in check) on the in-process app and its simulator."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

#: Examples per operation and generation mode: bounded (about a minute), deterministic.
EXAMPLES = 20
TOKEN = "schemathesis-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

#: "Schema-valid request rejected" is expected on the order tools until the order input is a
#: union per order type (issue 11: "LMT needs limit_price" is not expressible in today's schema).
#: Remove an entry once its operation's schema says everything the handler checks.
POSITIVE_ACCEPTANCE_PENDING = frozenset(
    {
        "POST /api/orders/preview",
        "POST /api/orders",
        # Cross-field rules no query-parameter schema can state: OPT needs expiry, strike and
        # right; strike/right/expiry are refused on STK, CASH and IND (issue 11).
        "GET /api/market/quote",
        "GET /api/market/bars",
        "GET /api/contracts/details",
        # At least one field to change; quantity within the position held.
        "POST /api/orders/{order_id}/modify",
        "POST /api/positions/close",
        # expiry_to may not be before expiry_from; an expiry is a calendar date (the pattern
        # says only YYYYMM[DD]: it is in every tool's schema an agent loads).
        "GET /api/options/chain",
        "POST /api/options/quotes",
    }
)


def _fuzz(operation: Any, mode: Any, failures: dict[tuple[str, str], str]) -> None:
    """Run ``EXAMPLES`` generated cases of ``operation`` in ``mode``, collecting failures."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    excluded: list[Any] = []
    if mode is GenerationMode.POSITIVE and operation.label in POSITIVE_ACCEPTANCE_PENDING:
        excluded.append(positive_data_acceptance)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            case.call_and_validate(headers=HEADERS, excluded_checks=excluded)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a FailureGroup is a BaseExceptionGroup
            failures.setdefault((operation.label, mode.value), str(exc))

    with contextlib.suppress(Unsatisfiable):  # no parameters: nothing to make negative
        run()


@pytest.mark.slow
def test_openapi_tells_the_truth(tmp_path: Path) -> None:
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.python.asgi import shutdown_lifespans

    from ibkr_mcp.config import load_settings
    from ibkr_mcp.http_api import create_app

    server_settings = load_settings(_env_file=None, DATA_DIR=tmp_path, API_TOKEN=TOKEN)
    app = create_app(server_settings, sim=True)  # the lifespan starts the simulator
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[tuple[str, str], str] = {}
    operations = 0
    try:
        for result in schema.get_all_operations():
            operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(result.ok(), mode, failures)
    finally:
        shutdown_lifespans()
    assert operations >= 15
    assert not failures, "\n\n".join(f"{k}: {v[:2000]}" for k, v in failures.items())
