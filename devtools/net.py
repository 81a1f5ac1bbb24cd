"""Ports of 127.0.0.1: a free one to listen on, and whether a server answers on one."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(host: str, port: int) -> bool:
    """A TCP connection to host:port opens within a second (PostgreSQL, Redis)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
