"""Serving optuna-dashboard. Bound to 127.0.0.1 by default: the dashboard can delete studies and has no login."""

from __future__ import annotations

import socket

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on right now (the OS picks it); another process could take it before we bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def dashboard_url(host: str, port: int, study_id: int | None = None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    path = f"/dashboard/studies/{study_id}" if study_id is not None else "/dashboard"
    return f"http://{shown}:{port}{path}"


def serve_dashboard(storage_url: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted. `storage_url` is a resolved storage URL (see sweeper.storage.resolve_storage_url)."""
    import optuna_dashboard

    optuna_dashboard.run_server(storage_url, host=host, port=port)
