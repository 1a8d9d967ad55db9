"""Contract resolution (reqContractDetails) behind a bounded LRU cache; never guesses."""

from __future__ import annotations

import asyncio
from typing import Final

from ib_async import ContractDetails as IbContractDetails

from ibkr_mcp.errors import (
    AmbiguousContractError,
    ContractNotFoundError,
    GatewayTimeoutError,
    InvalidInputError,
)
from ibkr_mcp.gateway import convert
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.gateway.lru import LruCache
from ibkr_mcp.models import Contract, ContractDetails, ContractRef

#: How many resolved contracts to keep.
CONTRACT_CACHE_SIZE: Final = 10_000

_NOT_FOUND_REMEDY: Final = (
    "Check the symbol, sec_type, currency and exchange (forex: symbol 'EUR.USD', sec_type "
    "CASH), or use search_contracts to find the right contract."
)


def _describe(ref: ContractRef) -> str:
    if ref.con_id:
        return f"conId {ref.con_id}"
    return f"{ref.symbol} ({ref.sec_type}, {ref.exchange}, {ref.currency})"


def _smart(ref: ContractRef) -> str | None:
    """Keep ``SMART`` routing when the caller asked for it (forex trades on IDEALPRO)."""
    routed = ref.sec_type not in ("CASH", "IND", "FUT")
    return "SMART" if ref.exchange.upper() == "SMART" and routed else None


def _expiry_of(details: IbContractDetails) -> str:
    assert details.contract is not None
    return details.contract.lastTradeDateOrContractMonth or "99999999"


class ContractResolver:
    """Resolves ``ContractRef`` to exactly one ``Contract``, caching results by ref.

    Args:
        conn: The broker connection.
        maxsize: Cache capacity.
    """

    def __init__(self, conn: IbConnection, maxsize: int = CONTRACT_CACHE_SIZE) -> None:
        self.conn = conn
        self.cache: LruCache[ContractRef, Contract] = LruCache(maxsize)
        self._inflight: dict[ContractRef, asyncio.Future[Contract]] = {}

    async def resolve(self, ref: ContractRef) -> Contract:
        """The single contract ``ref`` names (cached; concurrent lookups of one ref coalesce).

        Raises:
            ContractNotFoundError: If nothing matches.
            AmbiguousContractError: If several contracts match and ``ref`` cannot choose.
        """
        cached = self.cache.get(ref)
        if cached is not None:
            return cached
        pending = self._inflight.get(ref)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Contract] = asyncio.get_running_loop().create_future()
        self._inflight[ref] = future
        try:
            contract = await self._lookup(ref)
        except BaseException as exc:
            future.set_exception(exc)
            # Followers re-raise it; mark it retrieved so a lone failure is not logged twice.
            future.exception()
            raise
        else:
            future.set_result(contract)
            self.cache.put(ref, contract)
            return contract
        finally:
            self._inflight.pop(ref, None)

    async def _lookup(self, ref: ContractRef) -> Contract:
        matches = await self.raw_details(ref)
        exchange = _smart(ref)
        unique: dict[int, IbContractDetails] = {}
        for details in matches:
            assert details.contract is not None
            unique.setdefault(details.contract.conId, details)
        candidates = list(unique.values())
        if len(candidates) > 1 and ref.primary_exchange:
            wanted = ref.primary_exchange.upper()
            candidates = [
                d
                for d in candidates
                if d.contract is not None and d.contract.primaryExchange == wanted
            ]
        if len(candidates) > 1 and ref.sec_type == "FUT" and not ref.expiry:
            # No expiry named: the front month (IB lists only contracts not yet expired).
            candidates = [min(candidates, key=_expiry_of)]
        if len(candidates) == 1:
            return convert.contract_from_details(candidates[0], exchange=exchange)
        if not candidates:
            raise self._not_found(ref)
        raise AmbiguousContractError(
            f"{len(candidates)} contracts match {_describe(ref)}; refusing to guess.",
            remedy="Pass con_id, or primary_exchange / currency / sec_type to pick one of the "
            "candidates.",
            details={
                "symbol": ref.symbol,
                "candidates": [convert.candidate(d) for d in candidates],
            },
        )

    def _not_found(self, ref: ContractRef) -> ContractNotFoundError:
        return ContractNotFoundError(
            f"No contract found for {_describe(ref)}.",
            remedy=_NOT_FOUND_REMEDY,
            details={
                "symbol": ref.symbol,
                "sec_type": ref.sec_type,
                "exchange": ref.exchange,
                "currency": ref.currency,
                **({"con_id": ref.con_id} if ref.con_id else {}),
            },
        )

    async def raw_details(self, ref: ContractRef) -> list[IbContractDetails]:
        """ib_async contract details of every match (uncached).

        Raises:
            ContractNotFoundError: If IB answers 200 (no security definition).
        """
        query = convert.ref_to_ib(ref)
        ib = self.conn.ib
        try:
            found = await self.conn.call(
                lambda: ib.reqContractDetailsAsync(query),
                what=f"resolving {_describe(ref)}",
                extra={"symbol": ref.symbol},
            )
        except ContractNotFoundError:
            raise self._not_found(ref) from None
        return list(found)

    async def details(self, ref: ContractRef) -> list[ContractDetails]:
        """Full details of every contract matching ``ref``.

        Raises:
            ContractNotFoundError: If nothing matches.
        """
        matches = await self.raw_details(ref)
        if not matches:
            raise self._not_found(ref)
        return [convert.details_from_ib(d, exchange=_smart(ref)) for d in matches]

    async def search(self, pattern: str) -> list[Contract]:
        """Contracts whose symbol or name matches ``pattern`` (IB's reqMatchingSymbols).

        Raises:
            InvalidInputError: If ``pattern`` is empty.
        """
        text = pattern.strip()
        if not text:
            raise InvalidInputError(
                "Search pattern must not be empty.",
                remedy="Pass part of a symbol or company name, e.g. 'AAPL' or 'apple'.",
                details={"errors": [{"field": "pattern", "message": "empty"}]},
            )
        ib = self.conn.ib
        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        found = await self.conn.call(
            lambda: ib.reqMatchingSymbolsAsync(text), what=f"searching {text!r}", timeout=limit
        )
        if found is None:  # ib_async's own 4 s timeout answers None
            raise GatewayTimeoutError(
                f"searching {text!r}: IB did not answer.",
                remedy="Retry in a moment.",
                details={"pattern": text},
            )
        out: list[Contract] = []
        for desc in found:
            contract = convert.contract_from_description(desc)
            if contract is not None:
                out.append(contract)
        return out
