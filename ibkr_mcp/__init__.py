"""mm-ibkr-gateway: an MCP-first agent server for Interactive Brokers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mm-ibkr-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
