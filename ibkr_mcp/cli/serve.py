"""``ibkr-mcp serve``: load settings, configure logging, serve MCP on stdio."""

from __future__ import annotations


def serve_stdio_fast(*, sim: bool) -> None:
    """Serve MCP over stdio; on invalid settings print the one-line reason and exit 2.

    Args:
        sim: Start the embedded IB Gateway simulator and use it.
    """
    from ibkr_mcp.config import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        import sys

        sys.stderr.write(f"✗ {exc}\n")
        raise SystemExit(2) from None
    child = None
    if sim:
        # First: the simulator's own process loads while this one loads its framework.
        from ibkr_mcp.sim_process import spawn

        child = spawn(settings.env_file)
    from ibkr_mcp.logs import configure_logging, log_startup

    configure_logging(settings)
    log_startup(settings)
    from ibkr_mcp.mcp_server import run_stdio

    run_stdio(settings, sim=sim, sim_process=child)
