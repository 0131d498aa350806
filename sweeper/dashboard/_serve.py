"""Serving optuna-dashboard. Bound to 127.0.0.1 by default: the dashboard can delete studies and has no login."""

from __future__ import annotations

import socket

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


ALL_INTERFACES = ("0.0.0.0", "::", "")


class HostError(ValueError):
    """--host names no address this machine can bind."""


def _family(host: str) -> socket.AddressFamily:
    """IPv4 or IPv6, as the address resolves (`::1`, `localhost`, `0.0.0.0`)."""
    try:
        return socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except socket.gaierror as error:
        raise HostError(f"--host {host!r} is not an address of this machine ({error.strerror})") from None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on right now (the OS picks it); another process could take it before we bind."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError as error:
            raise HostError(f"--host {host!r}: cannot listen there ({error.strerror})") from None
        return probe.getsockname()[1]


def exposed(host: str) -> bool:
    """Whether other machines can reach a server bound to `host` (anything but a loopback address)."""
    if host in ALL_INTERFACES:
        return True
    try:
        import ipaddress

        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return host != "localhost"


def dashboard_url(host: str, port: int, study_id: int | None = None) -> str:
    """Where to open it: on all interfaces, this machine's name (it answers on every address)."""
    shown = socket.gethostname() if host in ALL_INTERFACES else host
    if ":" in shown:
        shown = f"[{shown}]"  # an IPv6 address in a URL
    path = f"/dashboard/studies/{study_id}" if study_id is not None else "/dashboard"
    return f"http://{shown}:{port}{path}"


def serve_dashboard(storage, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted. `storage`: the command's Optuna storage (`Storage.optuna`), or a resolved storage
    URL (see sweeper.storage.resolve_storage_url)."""
    import optuna_dashboard

    optuna_dashboard.run_server(storage, host=host, port=port)
