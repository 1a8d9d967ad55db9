"""Contract handler: reqContractDetails and reqMatchingSymbols."""

from __future__ import annotations

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator.host import Handler
from ibkr_mcp.simulator.incoming import parse_contract_details
from ibkr_mcp.simulator.wire import FieldReader


class ContractsHandler(Handler):
    """Contract lookups of one session."""

    def on_contract_details(self, r: FieldReader) -> None:
        """reqContractDetails: every match, then the end marker; nothing matches: error 200."""
        req = parse_contract_details(r, self.out.server_version)
        matches = self.host.resolve(req.contract)
        if not matches:
            self.out.error(req.req_id, 200, "No security definition has been found for the request")
            return
        now = self.host.clock.now()
        for inst in matches:
            self.out.send(
                out.contract_data(req.req_id, inst, now, self.out.server_version), req.req_id
            )
        self.out.send(out.contract_data_end(req.req_id), req.req_id)

    def on_matching_symbols(self, r: FieldReader) -> None:
        """ReqMatchingSymbols."""
        req_id = r.int()
        pattern = r.str()
        found = self.host.catalogue.search(pattern, 16)
        self.out.send(out.symbol_samples(req_id, found, self.out.server_version), req_id)
