"""The upstream HTTP seam (providers/http.py) against a real socket server that
behaves as upstreams do at the edges: a kept-alive connection the server drops, a
server that is not there, cookies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.asgi import lifespan
from providers import http
from providers.adapters.base import UpstreamRequest

ANSWER = b'{"ok": true}'


class _Server:
    """HTTP/1.1 on a real socket; each connection answers its first request (keeping
    the connection, as upstreams do) and closes at its second without answering:
    a server that dropped an idle connection just as the client reused it."""

    def __init__(self) -> None:
        self.connections = 0
        self.answered = 0
        self.closed = asyncio.Event()  # a connection was closed by the client

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for served in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                if served == 1:
                    return  # dropped: no answer at all
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"set-cookie: __cf_bm=abc123; path=/\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
                )
                await writer.drain()
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.set()
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[_Server, str]]:
    state = _Server()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        await http.aclose()
        listener.close()
        await listener.wait_closed()


async def _call(url: str) -> bytes:
    response = await http.send(UpstreamRequest(url=url, headers={}, json={"model": "m"}))
    try:
        assert response.status_code == 200
        return await response.aread()
    finally:
        await response.aclose()


async def test_a_kept_alive_connection_the_upstream_dropped_is_retried_on_a_new_one(
    server: tuple[_Server, str],
) -> None:
    state, url = server
    assert await _call(url) == ANSWER
    # The pooled connection is reused, and dropped by the server at that request.
    assert await _call(url) == ANSWER
    assert (state.connections, state.answered) == (2, 2)


async def test_an_upstream_that_is_not_there_is_a_transport_error_naming_no_url() -> None:
    with pytest.raises(http.TransportError) as failure:
        await _call("http://127.0.0.1:9/v1/chat/completions?key=sk-secret-in-url")
    assert "sk-secret" not in str(failure.value)
    await http.aclose()


async def test_a_server_shutting_down_closes_its_upstream_connections(
    server: tuple[_Server, str],
) -> None:
    state, url = server
    assert await _call(url) == ANSWER  # a kept-alive connection in the pool
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, str]] = []

    async def receive() -> dict[str, str]:
        return messages.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    await lifespan(receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    await asyncio.wait_for(state.closed.wait(), timeout=5)
