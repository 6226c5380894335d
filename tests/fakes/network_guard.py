"""Refuse any network connection that does not stay on this machine's loopback.

`install()` patches `socket.socket.connect`/`connect_ex`, `socket.create_connection` and
(unless `block_dns=False`) `socket.getaddrinfo`, so a forgotten real call to an upstream
fails at once with `RuntimeError("tests may only reach loopback: ...")` instead of sending
traffic. Allowed: 127.0.0.0/8, ::1, `localhost` names, unix sockets and other non-IP
families, plus any host passed in `extra_hosts`. Resolving a non-loopback name is refused
too, because the DNS query itself would leave the machine. asyncio's default loops go
through these functions, but uvloop resolves and connects inside libuv, past every Python
hook: so `install()` also makes `uvloop.new_event_loop` (what uvicorn's default `loop="auto"`
calls) hand out a standard asyncio loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_originals: dict[str, Any] = {}
_extra_hosts: set[str] = set()


def is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost") or name in _extra_hosts:
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _refuse(target: Any) -> None:
    raise RuntimeError(f"tests may only reach loopback: {target!r}")


def _check_address(family: int, address: Any) -> None:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # AF_UNIX paths, netlink...: never leave the machine
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        _refuse(address)


def _connect(self: socket.socket, address: Any) -> Any:
    _check_address(self.family, address)
    return _originals["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    _check_address(self.family, address)
    return _originals["connect_ex"](self, address)


def _create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    _check_address(socket.AF_INET, address)
    return _originals["create_connection"](address, *args, **kwargs)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    # Unspecified hosts (binding) and IP literals need no DNS; connect() still checks them.
    if name and not _is_ip_literal(name) and not is_loopback(name):
        _refuse(host)
    return _originals["getaddrinfo"](host, *args, **kwargs)


def install(*, block_dns: bool = True, extra_hosts: Iterable[str] = ()) -> None:
    """Idempotent: calling it again only adds `extra_hosts`."""
    _extra_hosts.update(h.lower() for h in extra_hosts)
    if _originals:
        return
    _originals["connect"] = socket.socket.connect
    _originals["connect_ex"] = socket.socket.connect_ex
    _originals["create_connection"] = socket.create_connection
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.create_connection = _create_connection  # type: ignore[assignment]
    if block_dns:
        _originals["getaddrinfo"] = socket.getaddrinfo
        socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        _originals["uvloop.new_event_loop"] = uvloop.new_event_loop
        uvloop.new_event_loop = asyncio.new_event_loop


def uninstall() -> None:
    if not _originals:
        return
    socket.socket.connect = _originals.pop("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _originals.pop("connect_ex")  # type: ignore[method-assign]
    socket.create_connection = _originals.pop("create_connection")  # type: ignore[assignment]
    if "getaddrinfo" in _originals:
        socket.getaddrinfo = _originals.pop("getaddrinfo")  # type: ignore[assignment]
    if "uvloop.new_event_loop" in _originals:
        import uvloop

        uvloop.new_event_loop = _originals.pop("uvloop.new_event_loop")
    _extra_hosts.clear()


def is_installed() -> bool:
    return bool(_originals)
