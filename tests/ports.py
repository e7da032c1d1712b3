"""Loopback ports for tests that run servers (pytest-xdist runs several workers at once)."""

from __future__ import annotations

import socket


def reserve_port() -> socket.socket:
    """A loopback socket bound to a free port and not listening: the port stays this test's
    until the socket is closed (another xdist worker cannot take it), and a connection to it
    is refused meanwhile. Hand the socket itself to a server that can take one."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def reserve_ports(*names: str) -> tuple[dict[str, socket.socket], dict[str, int]]:
    """A reserved socket per name, and their port numbers."""
    socks = {name: reserve_port() for name in names}
    return socks, {name: int(s.getsockname()[1]) for name, s in socks.items()}
