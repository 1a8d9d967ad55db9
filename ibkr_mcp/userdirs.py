"""Where configuration and data live: the env file search order and the platformdirs paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import platformdirs

#: The application name of the user config and data directories.
APP_NAME: Final = "mm-ibkr-gateway"
#: The environment variable naming the one env file to read (what `install` writes).
ENV_FILE_VAR: Final = "IBKR_MCP_ENV_FILE"

#: Set by the CLI's global ``--env-file`` option; wins over ``IBKR_MCP_ENV_FILE``.
_cli_env_file: Path | None = None


def set_cli_env_file(path: Path | None) -> None:
    """Record the ``--env-file`` option of this invocation (``None``: not given)."""
    global _cli_env_file
    _cli_env_file = path


def user_config_file() -> Path:
    """The per-user env file, e.g. ``~/.config/mm-ibkr-gateway/.env``."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False) / ".env"


def user_data_dir() -> Path:
    """The per-user data directory, e.g. ``~/.local/share/mm-ibkr-gateway`` (not created)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def user_cache_dir() -> Path:
    """The per-user cache directory, e.g. ``~/.cache/mm-ibkr-gateway`` (not created)."""
    return platformdirs.user_cache_path(APP_NAME, appauthor=False)


def explicit_env_file() -> tuple[Path, str] | None:
    """The env file named by ``--env-file`` or ``IBKR_MCP_ENV_FILE``, and which one named it."""
    if _cli_env_file is not None:
        return _cli_env_file, "--env-file"
    named = os.environ.get(ENV_FILE_VAR, "").strip()
    if named:
        return Path(named), ENV_FILE_VAR
    return None


def find_env_file() -> Path | None:
    """The one env file to read: ``--env-file``/``IBKR_MCP_ENV_FILE``, user config, ``./.env``.

    Returns:
        The absolute path of the first that exists, or ``None`` when there is none.

    Raises:
        FileNotFoundError: A file named explicitly does not exist (a typo there must not
            silently run the server with other limits).
    """
    explicit = explicit_env_file()
    if explicit is not None:
        path, origin = explicit
        path = path.expanduser().absolute()
        if not path.is_file():
            raise FileNotFoundError(f"Env file {path} (from {origin}) does not exist")
        return path
    for candidate in (user_config_file(), Path.cwd() / ".env"):
        if candidate.is_file():
            return candidate.absolute()
    return None
