"""Contract tools: search by symbol or name, full contract details."""

from __future__ import annotations

from pydantic import Field

from ibkr_mcp.models import Contract, ContractDetails
from ibkr_mcp.tools.common import ContractInput, ToolInput, ToolOutput
from ibkr_mcp.tools.registry import CallContext, ToolSpec


class SearchInput(ToolInput):
    """Input of search_contracts."""

    pattern: str = Field(
        min_length=1, max_length=64, description="Symbol prefix or company name, e.g. 'APP'."
    )


class ContractsResult(ToolOutput):
    """Matching contracts."""

    contracts: list[Contract]


class DetailsInput(ContractInput):
    """Input of get_contract_details."""


class DetailsResult(ToolOutput):
    """Every contract matching the input, with details."""

    details: list[ContractDetails]


async def search_contracts(params: SearchInput, ctx: CallContext) -> ContractsResult:
    """Handler of search_contracts."""
    return ContractsResult(contracts=await ctx.services.gateway.search_contracts(params.pattern))


async def get_contract_details(params: DetailsInput, ctx: CallContext) -> DetailsResult:
    """Handler of get_contract_details."""
    return DetailsResult(details=await ctx.services.gateway.contract_details(params.to_ref()))


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="search_contracts",
        description="Find contracts by symbol prefix or company name.",
        input_model=SearchInput,
        output_model=ContractsResult,
        handler=search_contracts,
        http_method="GET",
        http_path="/api/contracts/search",
        cli_name="search",
        cli_arguments=("pattern",),
    ),
    ToolSpec(
        name="get_contract_details",
        description="Contract details: conId, exchanges, min tick, trading hours, long name.",
        input_model=DetailsInput,
        output_model=DetailsResult,
        handler=get_contract_details,
        http_method="GET",
        http_path="/api/contracts/details",
        cli_name="contract",
        cli_arguments=("symbol",),
    ),
)
