"""Session request handlers, one per area: market data, contracts, orders, accounts."""
