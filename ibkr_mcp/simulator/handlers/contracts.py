"""Contract handler: reqContractDetails, reqMatchingSymbols and reqSecDefOptParams."""

from __future__ import annotations

from dataclasses import replace

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator.host import Handler
from ibkr_mcp.simulator.incoming import parse_contract_details
from ibkr_mcp.simulator.instruments_md import parse_sec_def_opt_params, sec_def_opt_params
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
        # A CONTFUT request is answered with the front month, reported as CONTFUT.
        as_type = "CONTFUT" if req.contract.sec_type == "CONTFUT" else None
        version = self.out.server_version
        wanted = req.contract.exchange
        for inst in matches:
            if inst.sec_type == "OPT" and wanted and wanted != inst.exchange:
                inst = replace(inst, exchange=wanted)  # IB answers on the exchange asked for
            self.out.send(out.contract_data(req.req_id, inst, now, version, as_type), req.req_id)
        self.out.send(out.contract_data_end(req.req_id), req.req_id)

    def on_matching_symbols(self, r: FieldReader) -> None:
        """ReqMatchingSymbols."""
        req_id = r.int()
        pattern = r.str()
        found = self.host.catalogue.search(pattern, 16)
        self.out.send(out.symbol_samples(req_id, found, self.out.server_version), req_id)

    def on_sec_def_opt_params(self, r: FieldReader) -> None:
        """reqSecDefOptParams: an underlying's option chain per exchange and trading class."""
        req = parse_sec_def_opt_params(r)
        for fields in sec_def_opt_params(self.host.market, req):
            self.out.send(fields, req.req_id)
