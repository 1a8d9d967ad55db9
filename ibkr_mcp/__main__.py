"""``python -m ibkr_mcp`` behaves like the ``ibkr-mcp`` console script."""

from ibkr_mcp.cli import main_mcp

if __name__ == "__main__":
    main_mcp()
