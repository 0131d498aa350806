"""Dashboard: optuna-dashboard on a study's storage, where trial user attributes show the final ORPO metrics and
failure reasons."""

from ._serve import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    HostError,
    dashboard_url,
    exposed,
    free_port,
    port_is_free,
    serve_dashboard,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "HostError",
    "dashboard_url",
    "exposed",
    "free_port",
    "port_is_free",
    "serve_dashboard",
]
