"""The embedded PostgreSQL used when no database URL is configured.

It lives in a per-user data directory (``$RHYTHM_EMBEDDED_DIR``, else
``$XDG_DATA_HOME/rhythm/pgdata``, else ``~/.local/share/rhythm/pgdata``) so that a worker
started with ``rhythm worker`` and a script that enqueues work share one database.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

_servers: dict[Path, Any] = {}


def default_data_dir() -> Path:
    explicit = os.environ.get("RHYTHM_EMBEDDED_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rhythm" / "pgdata"


def start(
    data_dir: Path | None = None, *, cleanup_mode: str | None = "stop", quiet: bool = False
) -> str:
    """Start (or join) the embedded server in ``data_dir`` and return its connection URL.

    ``cleanup_mode="stop"`` stops the server when the last process using it exits;
    ``"delete"`` also removes the data directory (for throw-away test servers).
    """
    path = (data_dir or default_data_dir()).resolve()
    server = _servers.get(path)
    if server is None:
        path.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            import pgserver

            server = pgserver.get_server(  # type: ignore[attr-defined]
                path, cleanup_mode=cleanup_mode
            )
        _servers[path] = server
        if not quiet:
            print(
                f"rhythm: RHYTHM_DATABASE_URL is not set; using the embedded PostgreSQL in {path}",
                file=sys.stderr,
            )
    return str(server.get_uri())


def stop_all() -> None:
    """Release the embedded servers this process started (pgserver stops or deletes them)."""
    while _servers:
        _, server = _servers.popitem()
        server.cleanup()
